#include <dlfcn.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

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

TEST(Errors, BadChoiceListsValidValues) {
  try {
    ganlite::throw_bad_choice("norm", "foo", {"instance", "batch"});
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
