#include <dlfcn.h>
#include <sched.h>
#include <unistd.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <atomic>
#include <filesystem>
#include <set>
#include <thread>

#include "ganlite/util/atomic_file.h"
#include "ganlite/util/device.h"
#include "ganlite/util/error.h"
#include "ganlite/util/progress.h"
#include "test_support.h"

namespace fs = std::filesystem;
using ganlite::testing::TempDir;

TEST(AtomicFile, WritesAndReplacesWithoutLeavingTemporaries) {
  TempDir dir;
  const fs::path target = dir / "out.txt";
  ganlite::write_file_atomic(target, std::string("first"));
  ganlite::write_file_atomic(target, std::string("second"));
  EXPECT_EQ(ganlite::read_file(target), "second");
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 1);
}

TEST(AtomicFile, FailedWriterLeavesOldFileIntact) {
  TempDir dir;
  const fs::path target = dir / "model.bin";
  ganlite::write_file_atomic(target, std::string("good"));
  EXPECT_THROW(ganlite::write_file_atomic(target,
                                          [](const fs::path& tmp) {
                                            ganlite::write_file_atomic(tmp, std::string("partial"));
                                            throw ganlite::Error("disk full");
                                          }),
               ganlite::Error);
  EXPECT_EQ(ganlite::read_file(target), "good");
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 1);
}

TEST(AtomicFile, ReadingMissingOrDirectoryNamesThePath) {
  TempDir dir;
  try {
    ganlite::read_file(dir / "nope.txt");
    FAIL();
  } catch (const ganlite::Error& e) {
    EXPECT_NE(std::string(e.what()).find("nope.txt"), std::string::npos);
  }
  EXPECT_THROW(ganlite::read_file(dir.path()), ganlite::Error);
}

TEST(AtomicFile, StaleTemporariesAreRecognisedAndRemovedAlone) {
  TempDir dir;
  // The name write_file_atomic gives its temporary, as a killed writer leaves it.
  std::string temporary;
  ganlite::write_file_atomic(dir / "a.bin", [&](const fs::path& tmp) {
    temporary = tmp.filename().string();
    ganlite::write_file_atomic(tmp, std::string("x"));
  });
  EXPECT_TRUE(ganlite::is_atomic_write_temporary(temporary)) << temporary;
  for (const char* name : {".a.bin.tmp.12.0", ".metrics.jsonl.tmp.4242.17"}) {
    EXPECT_TRUE(ganlite::is_atomic_write_temporary(name)) << name;
  }
  for (const char* name : {"a.bin", ".tmp.12.0", "..tmp.1.2", ".a.bin.tmp.12", ".a.bin.tmp.x.0", "a.bin.tmp.12.0",
                           ".a.bin.tmp.12.0.png", ".hidden"}) {
    EXPECT_FALSE(ganlite::is_atomic_write_temporary(name)) << name;
  }
  for (const char* name : {".a.bin.tmp.12.0", ".b.png.tmp.3.9", ".hidden", "keep.txt"}) {
    ganlite::write_file_atomic(dir / name, std::string("x"));
  }
  fs::create_directories(dir / "sub");
  ganlite::write_file_atomic(dir / "sub" / ".c.tmp.1.1", std::string("x"));
  EXPECT_EQ(ganlite::remove_stale_temporaries(dir.path()), 2u);
  std::set<std::string> left;
  for (const auto& e : fs::directory_iterator(dir.path())) left.insert(e.path().filename().string());
  EXPECT_EQ(left, (std::set<std::string>{"a.bin", ".hidden", "keep.txt", "sub"}));
  EXPECT_TRUE(fs::exists(dir / "sub" / ".c.tmp.1.1"));  // not below the folder
  EXPECT_EQ(ganlite::remove_stale_temporaries(dir / "missing"), 0u);
}

TEST(Errors, BadChoiceListsValidValues) {
  try {
    ganlite::throw_bad_choice("norm", "foo", {"instance", "batch"});
    ADD_FAILURE() << "no error";
  } catch (const ganlite::UsageError& e) {
    EXPECT_STREQ(e.what(), "unknown norm 'foo' (valid: instance, batch)");
  }
}

TEST(Progress, FormatsDurations) {
  EXPECT_EQ(ganlite::format_duration(12.34), "12.3s");
  EXPECT_EQ(ganlite::format_duration(185), "3m05s");
  EXPECT_EQ(ganlite::format_duration(3720), "1h02m");
  EXPECT_EQ(ganlite::format_duration(-1), "?");
}

TEST(Threads, SetsLibTorchThreadsAndMakesOpenBlasSingleThreaded) {
  ganlite::set_threads(2);
  EXPECT_EQ(torch::get_num_threads(), 2);
  using GetThreads = int (*)();
  auto get = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  if (!get) GTEST_SKIP() << "BLAS here is not OpenBLAS";
  EXPECT_EQ(get(), 1);
  EXPECT_THROW(ganlite::set_threads(-1), ganlite::UsageError);
}

TEST(Threads, IdleCpusLeaveOutACoreABusyLoopHolds) {
  const int cpus = ganlite::available_cpus();
  const int idle = ganlite::idle_cpus();
  EXPECT_GE(idle, 1);
  EXPECT_LE(idle, cpus);
  if (cpus < 2 || cpus != static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN))) {
    GTEST_SKIP() << "one CPU, or a cpuset / quota: idle_cpus() is available_cpus() there";
  }
  // A thread that stays runnable for the whole sampling takes a core, whatever else runs.
  std::atomic<bool> stop{false};
  std::thread busy([&stop] {
    volatile unsigned long spins = 0;
    while (!stop.load(std::memory_order_relaxed)) spins = spins + 1;
  });
  const int with_busy = ganlite::idle_cpus();
  stop = true;
  busy.join();
  EXPECT_LE(with_busy, cpus - 1);
  EXPECT_GE(with_busy, 1);
  EXPECT_THROW(ganlite::set_latency_threads(-1), ganlite::UsageError);
  const int before = torch::get_num_threads();
  ganlite::set_latency_threads(3);
  EXPECT_EQ(torch::get_num_threads(), 3) << "an explicit count is kept";
  torch::set_num_threads(before);
}

TEST(Threads, ZeroMeansTheCpusThisProcessMayUse) {
  cpu_set_t all;
  ASSERT_EQ(sched_getaffinity(0, sizeof(all), &all), 0);
  EXPECT_GE(ganlite::available_cpus(), 1);
  EXPECT_LE(ganlite::available_cpus(), CPU_COUNT(&all));  // a cgroup quota may lower it
  const int before = torch::get_num_threads();
  // Restricted to one CPU (as `taskset -c 0` does), "one thread per CPU" is one thread.
  cpu_set_t one;
  CPU_ZERO(&one);
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &all)) {
      CPU_SET(cpu, &one);
      break;
    }
  }
  ASSERT_EQ(sched_setaffinity(0, sizeof(one), &one), 0);
  const int restricted = ganlite::available_cpus();
  ganlite::set_threads(0);
  const int threads = torch::get_num_threads();
  ASSERT_EQ(sched_setaffinity(0, sizeof(all), &all), 0);
  torch::set_num_threads(before);
  EXPECT_EQ(restricted, 1);
  EXPECT_EQ(threads, 1);
}
