#include "ganlite/data/loader.h"

#include <torch/torch.h>

#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <numeric>
#include <thread>

#include "ganlite/data/sample_rng.h"
#include "ganlite/util/error.h"

namespace ganlite::data {

// Workers claim batch numbers in order (at most `prefetch` ahead of the consumer), build them
// without holding the lock and file them under their number; next() hands them out in order.
// A generation counter makes work from an abandoned epoch harmless.
struct DataLoader::State {
  struct Slot {
    std::optional<Batch> batch;
    std::exception_ptr error;
  };

  std::shared_ptr<Dataset> dataset;
  LoaderOptions options;

  std::mutex mutex;
  std::condition_variable changed;
  bool stopping = false;
  bool started = false;
  uint64_t generation = 0;
  uint64_t epoch_seed = 0;
  std::shared_ptr<const std::vector<size_t>> order;  // shared so workers need not copy it
  int64_t total_batches = 0;
  int64_t next_to_claim = 0;
  int64_t next_to_deliver = 0;
  std::map<int64_t, Slot> ready;
  std::vector<std::thread> workers;

  size_t global_batch() const {
    return static_cast<size_t>(options.batch_size) * static_cast<size_t>(options.world_size);
  }

  int64_t batches_for(size_t n) const {
    const size_t full = n / global_batch(), rest = n % global_batch();
    const bool keep_rest = !options.drop_last && rest >= static_cast<size_t>(options.world_size);
    return static_cast<int64_t>(full + (keep_rest ? 1 : 0));
  }

  // Loads this rank's part of global batch `b` of the epoch described by (order, seed);
  // touches no shared state.
  Batch build(const std::vector<size_t>& epoch_order, uint64_t seed, int64_t b) const {
    const size_t global_begin = static_cast<size_t>(b) * global_batch();
    const size_t global_size = std::min(epoch_order.size(), global_begin + global_batch()) - global_begin;
    const auto rank = static_cast<size_t>(options.rank), ranks = static_cast<size_t>(options.world_size);
    const size_t begin = global_begin + rank * global_size / ranks;
    const size_t end = global_begin + (rank + 1) * global_size / ranks;
    std::vector<torch::Tensor> as, bs;
    Batch batch;
    batch.global_size = static_cast<int64_t>(global_size);
    for (size_t i = begin; i < end; ++i) {
      Sample s = dataset->get(epoch_order[i], seed);
      as.push_back(std::move(s.a));
      if (s.b.defined()) bs.push_back(std::move(s.b));
      batch.a_paths.push_back(std::move(s.a_path));
      batch.b_paths.push_back(std::move(s.b_path));
    }
    const auto stack = [&](const std::vector<torch::Tensor>& ts) {
      for (const auto& t : ts) {
        if (t.sizes() != ts.front().sizes()) {
          throw Error("cannot batch images of different sizes " + std::string(c10::str(ts.front().sizes())) + " and " +
                      std::string(c10::str(t.sizes())) + " (use a crop preprocess or batch_size 1)");
        }
      }
      torch::Tensor stacked = torch::stack(ts);
      if (options.device != torch::Device(torch::kCPU)) stacked = stacked.to(options.device);
      return stacked;
    };
    batch.a = stack(as);
    if (!bs.empty()) {
      if (bs.size() != as.size()) throw Error("dataset returned a B image for only some samples of a batch");
      batch.b = stack(bs);
    }
    return batch;
  }

  void worker_loop() {
    // No at::set_num_threads(1) here: it sets ATen's process-wide default, which the main thread
    // adopts at its first parallel op if that comes later, and training then ran on one thread
    // (1.75x slower). The latency stalls that line was meant to fix came from OpenBLAS's threads
    // (util/device.h).
    std::unique_lock<std::mutex> lock(mutex);
    while (true) {
      changed.wait(lock, [&] {
        return stopping ||
               (started && next_to_claim < total_batches && next_to_claim - next_to_deliver < options.prefetch);
      });
      if (stopping) return;
      const int64_t b = next_to_claim++;
      const uint64_t gen = generation;
      // Holding these keeps the work independent of a concurrent start_epoch().
      const auto epoch_order = order;
      const uint64_t seed = epoch_seed;
      lock.unlock();
      Slot slot;
      try {
        slot.batch = build(*epoch_order, seed, b);
      } catch (...) {
        slot.error = std::current_exception();
      }
      lock.lock();
      if (gen == generation) {
        ready[b] = std::move(slot);
        changed.notify_all();
      }
    }
  }
};

DataLoader::DataLoader(std::shared_ptr<Dataset> dataset, LoaderOptions options) : state_(std::make_unique<State>()) {
  if (!dataset) throw Error("DataLoader: no dataset");
  require(options.batch_size >= 1, "batch_size must be >= 1, got " + std::to_string(options.batch_size));
  require(options.workers >= 0, "workers must be >= 0, got " + std::to_string(options.workers));
  require(options.prefetch >= 1, "prefetch must be >= 1, got " + std::to_string(options.prefetch));
  require(options.world_size >= 1 && options.rank >= 0 && options.rank < options.world_size,
          "loader rank " + std::to_string(options.rank) + " of " + std::to_string(options.world_size) +
              " is out of range");
  state_->dataset = std::move(dataset);
  state_->options = options;
  for (int i = 0; i < options.workers; ++i) state_->workers.emplace_back([s = state_.get()] { s->worker_loop(); });
}

DataLoader::~DataLoader() {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->stopping = true;
  }
  state_->changed.notify_all();
  // A worker in the middle of a batch finishes it (bounded work) and then sees `stopping`.
  for (auto& t : state_->workers) t.join();
}

void DataLoader::start_epoch(int64_t epoch, int64_t skip_batches) {
  require(skip_batches >= 0, "skip_batches must be >= 0, got " + std::to_string(skip_batches));
  State& s = *state_;
  const size_t n = s.dataset->size();
  const uint64_t epoch_seed = hash_combine(s.options.seed, static_cast<uint64_t>(epoch));
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  if (s.options.shuffle) {
    SampleRng rng(hash_combine(epoch_seed, 0x5348554646ULL));  // Fisher-Yates from (seed, epoch)
    for (size_t i = n; i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  }
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    ++s.generation;
    s.started = true;
    s.epoch_seed = epoch_seed;
    s.order = std::make_shared<const std::vector<size_t>>(std::move(order));
    s.total_batches = s.batches_for(n);
    s.next_to_claim = s.next_to_deliver = std::min(skip_batches, s.total_batches);
    s.ready.clear();
  }
  s.changed.notify_all();
}

std::optional<Batch> DataLoader::next() {
  State& s = *state_;
  if (!s.started) start_epoch(0);
  std::unique_lock<std::mutex> lock(s.mutex);
  if (s.next_to_deliver >= s.total_batches) return std::nullopt;
  const int64_t b = s.next_to_deliver;
  State::Slot slot;
  if (s.workers.empty()) {
    // No worker threads: load in the caller.
    ++s.next_to_claim;
    lock.unlock();
    try {
      slot.batch = s.build(*s.order, s.epoch_seed, b);
    } catch (...) {
      slot.error = std::current_exception();
    }
    lock.lock();
  } else {
    s.changed.wait(lock, [&] { return s.ready.count(b) > 0; });
    slot = std::move(s.ready[b]);
    s.ready.erase(b);
  }
  ++s.next_to_deliver;
  lock.unlock();
  s.changed.notify_all();
  if (slot.error) std::rethrow_exception(slot.error);
  return std::move(slot.batch);
}

int64_t DataLoader::batches_per_epoch() const { return state_->batches_for(state_->dataset->size()); }

const Dataset& DataLoader::dataset() const { return *state_->dataset; }

}  // namespace ganlite::data
