// Batches from a Dataset, loaded by a worker pool ahead of the training step.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ganlite/data/dataset.h"

namespace ganlite::data {

struct Batch {
  torch::Tensor a;  // [N, 3, H, W]
  torch::Tensor b;  // undefined for single-folder datasets
  std::vector<std::string> a_paths;
  std::vector<std::string> b_paths;
  // Samples in the step's global batch, over all data-parallel ranks (a.size(0) with one).
  int64_t global_size = 0;
};

// Data-parallel loading: with world_size N, every rank draws the same global batches of
// N * batch_size samples (same order, same per-sample crops and flips, as they depend only on
// seed, epoch and sample) and rank r keeps its slice r of each. So N ranks see together at each
// step exactly what one process with batch N * batch_size sees. A short last batch of m samples
// is split as evenly as possible (rank r: [r m / N, (r+1) m / N)); one with fewer samples than
// ranks is dropped, as every rank needs a sample.
struct LoaderOptions {
  int batch_size = 1;  // per rank
  int rank = 0;
  int world_size = 1;
  bool shuffle = true;
  bool drop_last = false;
  uint64_t seed = 0;
  int workers = 2;   // loading threads
  int prefetch = 4;  // batches kept ready ahead of the consumer
  torch::Device device = torch::kCPU;  // workers move finished batches here
};

class DataLoader {
 public:
  DataLoader(std::shared_ptr<Dataset> dataset, LoaderOptions options);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // Begins epoch `epoch` (order and transforms depend only on seed and epoch), skipping the
  // first `skip_batches` batches so a resumed run sees exactly what an uninterrupted one would.
  void start_epoch(int64_t epoch, int64_t skip_batches = 0);
  // The next batch of the current epoch, or nullopt at its end. Rethrows a worker's error.
  std::optional<Batch> next();
  int64_t batches_per_epoch() const;
  const Dataset& dataset() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace ganlite::data
