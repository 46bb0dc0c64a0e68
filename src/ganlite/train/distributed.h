// Data-parallel training on PyTorch's c10d (the engine torch.distributed and DDP run on):
// ProcessGroupGloo on CPU, ProcessGroupNCCL in CUDA builds of LibTorch that have it. Workers
// find each other as torchrun starts them: RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
// MASTER_ADDR, MASTER_PORT in the environment, rendezvous through a c10d TCPStore on the master.
//
// What makes N processes with batch B compute what one process with batch N*B computes:
//  - the loader gives rank r its slice of the global batch (data/loader.h);
//  - GradientAverager: every parameter's gradient is the batch-weighted sum over ranks, reduced
//    in ~25 MB buckets launched from autograd hooks as the buckets fill during backward (DDP's
//    Reducer scheme, Li et al., "PyTorch Distributed", VLDB 2020), waited at the end of backward;
//  - BatchNorm layers in training mode normalise with the global batch's statistics and
//    reduce their gradient terms in backward (torch.nn.SyncBatchNorm's semantics);
//  - all_gather_batch gives a loss that couples samples (kernel alignment's Gram matrix) the
//    global batch, with a backward that routes each rank its own slice's gradient.
// c10d's own headers stay in distributed.cpp (they need USE_C10D_GLOO and pull in gloo).
#pragma once
#include <torch/nn/module.h>
#include <torch/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ganlite::nn {
struct GeneratorOutput;
}

namespace ganlite::train {

struct WorldInfo {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
};

// torchrun's variables, or nullopt when WORLD_SIZE is not set. A malformed or inconsistent
// value throws UsageError naming the variable.
std::optional<WorldInfo> world_from_environment();

// How long a collective or the rendezvous waits for the other ranks before this rank gives up
// with an Error (a rank that died usually closes its sockets and is noticed at once).
// GANLITE_DIST_TIMEOUT (seconds) overrides the default of 1800 (torch.distributed's).
std::chrono::milliseconds collective_timeout();

// The process's data-parallel world (one per process, from init until exit).
class Distributed {
 public:
  // Joins the world: TCPStore (rank 0 serves it), then the process group on `device`
  // (Gloo for CPU, NCCL for CUDA where built). Throws Error when the rendezvous times out.
  static Distributed& init(const WorldInfo& world, const torch::Device& device);
  // The world this process joined, or nullptr (single process).
  static Distributed* current();
  ~Distributed();

  int rank() const { return world_.rank; }
  int size() const { return world_.world_size; }
  bool is_main() const { return world_.rank == 0; }
  const WorldInfo& world() const { return world_; }
  const torch::Device& device() const { return device_; }

  // This rank's share of the current step's global batch (local / global samples): gradients
  // and logged losses are weighted by it and summed, which is the global batch's mean.
  void set_step_weight(double weight) { step_weight_ = weight; }
  double step_weight() const { return step_weight_; }

  // Collectives (every rank must call them in the same order). Errors become ganlite::Error
  // naming this rank. Tensors may live on any device; they are reduced on device().
  void all_reduce_sum(torch::Tensor& tensor);
  void all_reduce_max(torch::Tensor& tensor);
  void broadcast_from_main(std::vector<torch::Tensor>& tensors);
  torch::Tensor all_gather_cat(const torch::Tensor& tensor);  // along dim 0; sizes may differ by rank
  void barrier();

  // Asynchronous sum for the gradient buckets: returns a handle; wait() rethrows failures.
  class Pending {
   public:
    virtual ~Pending() = default;
    virtual void wait() = 0;
  };
  std::unique_ptr<Pending> all_reduce_sum_async(torch::Tensor& tensor);

  struct Impl;  // the c10d store and process group (distributed.cpp)

 private:
  void all_reduce_max_here(torch::Tensor& tensor);
  Distributed(WorldInfo world, torch::Device device, std::unique_ptr<Impl> impl);
  WorldInfo world_;
  torch::Device device_;
  std::unique_ptr<Impl> impl_;
  double step_weight_ = 1.0;
};

// Whether this build can run data-parallel on CPU (Gloo): LibTorch installs without gloo's headers
// (pip's wheels) build without it and run data-parallel on CUDA (NCCL) only.
bool cpu_data_parallel_available();

// A TCP port on loopback that the kernel just handed out (free now; a TCPStore binds it moments
// later): MASTER_PORT for workers started on this machine. Error when no socket can be had.
int free_local_port();

// The rank this process has in its world per the environment (0 without one): lets a command
// silence the other ranks' output before it starts training.
int environment_rank();

// The step's losses weighted by each rank's step weight and summed over ranks (the global
// batch's mean, as one process would log it); returns the largest stop signal any rank caught,
// so that every rank stops after the same step.
int reduce_step_report(Distributed& dist, std::vector<std::pair<std::string, double>>& losses, int signal);

// Rank 0's value of `value`, on every rank (a decision only rank 0 may take: resume or not).
bool main_rank_decides(Distributed& dist, bool value);

// Joins the world the environment describes (WORLD_SIZE > 1), once per process; nullptr
// without one. A CUDA `device` becomes the local rank's GPU.
Distributed* join_environment_world(torch::Device& device);

// Threads for one of `local_ranks` processes on this machine: `threads` when given (> 0), else
// the cores divided among them (the processes would otherwise contend for every core).
int threads_per_rank(int threads, int local_ranks);

// Rank 0's parameters and buffers of `modules`, copied to every rank.
void broadcast_modules(Distributed& dist, const std::vector<std::pair<std::string, torch::nn::Module*>>& modules);

// Throws Error naming the first module whose parameters or buffers differ (bitwise) between ranks.
void check_modules_agree(Distributed& dist, const std::vector<std::pair<std::string, torch::nn::Module*>>& modules);

// Averages gradients across ranks from autograd hooks (see the file comment). Hooks stay on the
// parameters for this object's lifetime. Parameters shared between modules count once.
class GradientAverager {
 public:
  static constexpr int64_t kDefaultBucketBytes = 25 << 20;  // DDP's bucket_cap_mb default
  GradientAverager(Distributed& dist, const std::vector<std::pair<std::string, torch::nn::Module*>>& modules,
                   int64_t bucket_bytes = kDefaultBucketBytes);
  ~GradientAverager();
  GradientAverager(const GradientAverager&) = delete;
  GradientAverager& operator=(const GradientAverager&) = delete;

  int64_t bucket_count() const;
  // Seconds spent waiting for all-reduces at the end of backward passes, summed (bench).
  double wait_seconds() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// While alive: BatchNorm2d layers run through nn::run_sequential in training mode use the
// statistics of the global batch (SyncBatchNorm). One at a time.
class SyncBatchNormScope {
 public:
  explicit SyncBatchNormScope(Distributed& dist);
  ~SyncBatchNormScope();
  SyncBatchNormScope(const SyncBatchNormScope&) = delete;
  SyncBatchNormScope& operator=(const SyncBatchNormScope&) = delete;
};

// Where this rank's `local_count` samples begin in the global batch (the lower ranks' counts
// summed); a collective.
int64_t global_batch_offset(Distributed& dist, int64_t local_count);

// The global batch along dim 0, in rank order, differentiable: backward hands each rank the
// gradient of its own slice divided by its step weight (the loss computed from the gathered
// batch is the same on every rank, and the averager weights each rank's gradient by it).
// Returns `local` itself without a world.
torch::Tensor all_gather_batch(const torch::Tensor& local);
// The same for a generator's image and taps.
nn::GeneratorOutput all_gather_batch(const nn::GeneratorOutput& local);

}  // namespace ganlite::train
