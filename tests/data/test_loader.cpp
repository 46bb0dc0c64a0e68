#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <numeric>
#include <set>
#include <thread>

#include "ganlite/data/loader.h"
#include "ganlite/util/error.h"

namespace {

namespace data = ganlite::data;

// In-memory dataset: sample i is a 3x2x2 tensor filled with i, B with i + seed fraction so the
// seed handed down by the loader is visible; optionally slow or failing at one index.
class FakeDataset : public data::Dataset {
 public:
  explicit FakeDataset(size_t n, int fail_at = -1, int sleep_ms = 0) : n_(n), fail_at_(fail_at), sleep_ms_(sleep_ms) {}
  size_t size() const override { return n_; }
  size_t skipped_files() const override { return 0; }
  data::Sample get(size_t index, uint64_t seed) const override {
    if (sleep_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms_));
    if (static_cast<int>(index) == fail_at_) throw ganlite::Error("cannot read sample " + std::to_string(index) + ".png");
    data::Sample s;
    s.a = torch::full({3, 2, 2}, static_cast<float>(index));
    s.b = torch::full({3, 2, 2}, static_cast<float>(seed % 1000));
    s.a_path = std::to_string(index);
    return s;
  }

 private:
  size_t n_;
  int fail_at_;
  int sleep_ms_;
};

struct Seen {
  std::vector<int64_t> indices;  // in delivery order
  std::vector<float> seeds;      // the per-epoch seed each sample got
  int64_t batches = 0;
};

Seen run_epoch(data::DataLoader& loader, int64_t epoch, int64_t skip = 0) {
  loader.start_epoch(epoch, skip);
  Seen seen;
  while (auto batch = loader.next()) {
    EXPECT_EQ(batch->a.dim(), 4);
    EXPECT_EQ(batch->a.size(1), 3);
    EXPECT_EQ(batch->a.size(0), batch->b.size(0));
    EXPECT_EQ(static_cast<int64_t>(batch->a_paths.size()), batch->a.size(0));
    for (int64_t i = 0; i < batch->a.size(0); ++i) {
      seen.indices.push_back(static_cast<int64_t>(batch->a[i][0][0][0].item<float>()));
      seen.seeds.push_back(batch->b[i][0][0][0].item<float>());
    }
    ++seen.batches;
  }
  return seen;
}

data::LoaderOptions options(int batch, bool shuffle, uint64_t seed, int workers = 2) {
  data::LoaderOptions o;
  o.batch_size = batch;
  o.shuffle = shuffle;
  o.seed = seed;
  o.workers = workers;
  o.prefetch = 3;
  return o;
}

TEST(Loader, EverySampleOncePerEpoch) {
  data::DataLoader loader(std::make_shared<FakeDataset>(10), options(3, true, 1));
  EXPECT_EQ(loader.batches_per_epoch(), 4);
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    const Seen seen = run_epoch(loader, epoch);
    EXPECT_EQ(seen.batches, 4);
    std::vector<int64_t> sorted = seen.indices;
    std::sort(sorted.begin(), sorted.end());
    std::vector<int64_t> expected(10);
    std::iota(expected.begin(), expected.end(), 0);
    EXPECT_EQ(sorted, expected);
  }
  EXPECT_FALSE(loader.next().has_value());  // stays at the end
}

TEST(Loader, SequentialOrderAndDropLast) {
  auto o = options(4, false, 0);
  o.drop_last = true;
  data::DataLoader loader(std::make_shared<FakeDataset>(10), o);
  EXPECT_EQ(loader.batches_per_epoch(), 2);
  const Seen seen = run_epoch(loader, 0);
  EXPECT_EQ(seen.indices, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7}));
}

TEST(Loader, DeterministicGivenSeedAndEpoch) {
  auto ds = std::make_shared<FakeDataset>(16);
  data::DataLoader a(ds, options(2, true, 42, 3));
  data::DataLoader b(ds, options(2, true, 42, 0));  // no workers: loads in the caller
  data::DataLoader c(ds, options(2, true, 43, 2));
  const Seen a0 = run_epoch(a, 0), b0 = run_epoch(b, 0), c0 = run_epoch(c, 0);
  EXPECT_EQ(a0.indices, b0.indices);
  EXPECT_EQ(a0.seeds, b0.seeds);
  EXPECT_NE(a0.indices, c0.indices);
  const Seen a1 = run_epoch(a, 1);
  EXPECT_NE(a0.indices, a1.indices);
  EXPECT_NE(a0.seeds.front(), a1.seeds.front());  // transforms change with the epoch too
  EXPECT_EQ(run_epoch(a, 0).indices, a0.indices);  // epoch 0 again: the same as before
}

TEST(Loader, SkipBatchesResumesExactly) {
  auto ds = std::make_shared<FakeDataset>(11);
  data::DataLoader loader(ds, options(3, true, 5));
  const Seen full = run_epoch(loader, 2);
  const Seen resumed = run_epoch(loader, 2, 2);
  EXPECT_EQ(resumed.batches, 2);
  EXPECT_EQ(resumed.indices, std::vector<int64_t>(full.indices.begin() + 6, full.indices.end()));
  EXPECT_EQ(resumed.seeds, std::vector<float>(full.seeds.begin() + 6, full.seeds.end()));
  EXPECT_EQ(run_epoch(loader, 2, 100).batches, 0);
}

TEST(Loader, RestartMidEpoch) {
  data::DataLoader loader(std::make_shared<FakeDataset>(12), options(2, true, 9));
  const Seen full = run_epoch(loader, 0);
  loader.start_epoch(0);
  ASSERT_TRUE(loader.next().has_value());
  const Seen again = run_epoch(loader, 0);  // abandons the partly consumed epoch
  EXPECT_EQ(again.indices, full.indices);
}

TEST(Loader, WorkerErrorIsRethrownInNext) {
  for (int workers : {0, 2}) {
    data::DataLoader loader(std::make_shared<FakeDataset>(8, 5), options(2, false, 0, workers));
    loader.start_epoch(0);
    EXPECT_TRUE(loader.next().has_value());
    EXPECT_TRUE(loader.next().has_value());
    try {
      loader.next();
      FAIL() << "expected the worker's error";
    } catch (const ganlite::Error& e) {
      EXPECT_NE(std::string(e.what()).find("5.png"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(loader.next().has_value());  // later batches still arrive
    EXPECT_FALSE(loader.next().has_value());
  }
}

TEST(Loader, DestructorMidEpochDoesNotHang) {
  const auto start = std::chrono::steady_clock::now();
  {
    data::DataLoader loader(std::make_shared<FakeDataset>(1000, -1, 5), options(4, true, 0, 3));
    loader.start_epoch(0);
    ASSERT_TRUE(loader.next().has_value());
  }
  {
    data::DataLoader never_started(std::make_shared<FakeDataset>(10), options(2, true, 0, 2));
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 3.0);
}

TEST(Loader, WorkersLeaveTheThreadCountAlone) {
  // A thread that starts its first ATen parallel op after the workers ran (as the trainer's main
  // thread can) must still get the configured count: workers once set ATen's process-wide
  // default to 1, and training ran on one thread.
  torch::set_num_threads(2);
  {
    data::DataLoader loader(std::make_shared<FakeDataset>(8), options(2, true, 1, 2));
    EXPECT_EQ(run_epoch(loader, 0).batches, 4);
  }
  int threads_seen = 0;
  std::thread([&] { threads_seen = torch::get_num_threads(); }).join();
  EXPECT_EQ(threads_seen, 2);
}

TEST(Loader, BadOptions) {
  auto ds = std::make_shared<FakeDataset>(4);
  EXPECT_THROW(data::DataLoader(ds, options(0, true, 0)), ganlite::UsageError);
  EXPECT_THROW(data::DataLoader(ds, options(1, true, 0, -1)), ganlite::UsageError);
  EXPECT_THROW(data::DataLoader(nullptr, options(1, true, 0)), ganlite::Error);
}

}  // namespace
