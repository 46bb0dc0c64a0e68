#include "ganlite/train/distributed.h"

#include <torch/csrc/autograd/engine.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/torch.h>

#if defined(USE_C10D_GLOO)
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#if defined(GANLITE_WITH_NCCL)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "ganlite/nn/forward_trace.h"
#include "ganlite/nn/generator.h"
#include "ganlite/torch_compat.h"
#include "ganlite/util/error.h"

// Gloo (CPU) where LibTorch's install has gloo's headers (Debian's does; pip's wheels do not, and
// there data-parallel runs on CUDA through NCCL only); src/CMakeLists.txt defines USE_C10D_GLOO.

namespace ganlite::train {

namespace {

using Group = GANLITE_C10D_GROUP_BASE;

std::unique_ptr<Distributed>& world_slot() {
  static std::unique_ptr<Distributed> world;
  return world;
}

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

int env_integer(const char* name, int lo, int hi, bool* present = nullptr) {
  const char* value = std::getenv(name);
  if (present) *present = value != nullptr;
  if (!value) return lo;
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(value, &end, 10);
  if (errno != 0 || end == value || *end != '\0' || v < lo || v > hi) {
    throw UsageError("environment variable " + std::string(name) + "='" + value + "': expected an integer in [" +
                     std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return static_cast<int>(v);
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

}  // namespace

std::optional<WorldInfo> world_from_environment() {
  bool present = false;
  WorldInfo w;
  w.world_size = env_integer("WORLD_SIZE", 1, 65536, &present);
  if (!present) return std::nullopt;
  w.rank = env_integer("RANK", 0, w.world_size - 1);
  w.local_rank = env_integer("LOCAL_RANK", 0, w.world_size - 1);
  bool has_local_size = false;
  w.local_world_size = env_integer("LOCAL_WORLD_SIZE", 1, w.world_size, &has_local_size);
  if (!has_local_size) w.local_world_size = w.world_size;
  if (w.local_rank >= w.local_world_size) {
    throw UsageError("environment: LOCAL_RANK " + std::to_string(w.local_rank) + " >= LOCAL_WORLD_SIZE " +
                     std::to_string(w.local_world_size));
  }
  if (const char* addr = std::getenv("MASTER_ADDR")) w.master_addr = addr;
  w.master_port = env_integer("MASTER_PORT", 1, 65535, &present);
  if (!present && w.world_size > 1) throw UsageError("environment: WORLD_SIZE is set but MASTER_PORT is not");
  if (!present) w.master_port = 29500;
  return w;
}

int free_local_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error("cannot open a socket to find a free local port");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  close(fd);
  if (!ok) throw Error("cannot find a free local port");
  return ntohs(addr.sin_port);
}

int environment_rank() {
  const auto w = world_from_environment();
  return w ? w->rank : 0;
}

std::chrono::milliseconds collective_timeout() {
  const int seconds = std::getenv("GANLITE_DIST_TIMEOUT") ? env_integer("GANLITE_DIST_TIMEOUT", 1, 86400) : 1800;
  return std::chrono::milliseconds(int64_t{seconds} * 1000);
}

struct Distributed::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<Group> group;
  std::string who;  // "rank 1 of 2"

  [[noreturn]] void fail(const std::string& what, const std::exception& e) const {
    throw Error("data-parallel " + who + ": " + what + " failed (another rank stopped, or none answered within " +
                std::to_string(collective_timeout().count() / 1000) + " s, GANLITE_DIST_TIMEOUT): " +
                first_line(e.what()));
  }
  void wait(const c10::intrusive_ptr<c10d::Work>& work, const std::string& what) const {
    try {
      work->wait();
    } catch (const std::exception& e) {
      fail(what, e);
    }
  }
};

namespace {

#if defined(USE_C10D_GLOO)
std::shared_ptr<::gloo::transport::Device> gloo_device(const WorldInfo& w) {
  // As torch.distributed: GLOO_SOCKET_IFNAME names the interface; a local world stays on loopback.
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME")) {
    return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  }
  if (is_loopback(w.master_addr)) return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}
#endif

c10::intrusive_ptr<Group> make_group(const c10::intrusive_ptr<c10d::Store>& store, const WorldInfo& w,
                                     const torch::Device& device) {
  if (device.is_cuda()) {
#if defined(GANLITE_WITH_NCCL)
    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = collective_timeout();
    return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, w.rank, w.world_size, options);
#else
    throw UsageError("data-parallel training on " + device.str() +
                     " needs a LibTorch with NCCL (this build has Gloo only: use --device cpu)");
#endif
  }
#if defined(USE_C10D_GLOO)
  auto options = c10d::ProcessGroupGloo::Options::create(collective_timeout());
  options->devices.push_back(gloo_device(w));
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, w.rank, w.world_size, options);
#else
  (void)store;
  (void)w;
  throw UsageError("data-parallel training on " + device.str() +
                   " needs Gloo, and this LibTorch install has no gloo headers (pip's wheels ship none):"
                   " use --device cuda (NCCL), or build against Debian's libtorch-dev");
#endif
}

}  // namespace

bool cpu_data_parallel_available() {
#if defined(USE_C10D_GLOO)
  return true;
#else
  return false;
#endif
}

Distributed::Distributed(WorldInfo world, torch::Device device, std::unique_ptr<Impl> impl)
    : world_(std::move(world)), device_(device), impl_(std::move(impl)) {}

Distributed::~Distributed() = default;

Distributed* Distributed::current() { return world_slot().get(); }

Distributed& Distributed::init(const WorldInfo& world, const torch::Device& device) {
  require(!world_slot(), "the data-parallel world is already initialised");
  auto impl = std::make_unique<Impl>();
  impl->who = "rank " + std::to_string(world.rank) + " of " + std::to_string(world.world_size);
  const std::string where = world.master_addr + ":" + std::to_string(world.master_port);
  try {
    c10d::TCPStoreOptions options;
    options.port = static_cast<uint16_t>(world.master_port);
    options.isServer = world.rank == 0;
    options.numWorkers = static_cast<size_t>(world.world_size);
    options.waitWorkers = true;
    options.timeout = collective_timeout();
    impl->store = c10::make_intrusive<c10d::TCPStore>(world.master_addr, options);
    impl->group = make_group(impl->store, world, device);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error("data-parallel " + impl->who + ": rendezvous at MASTER_ADDR:MASTER_PORT " + where +
                " failed: " + first_line(e.what()));
  }
  world_slot().reset(new Distributed(world, device, std::move(impl)));
  return *world_slot();
}

namespace {

// Runs `collective` on `tensor` moved to the group's device (NCCL reduces CUDA tensors only).
template <typename Collective>
void on_device(torch::Tensor& tensor, const torch::Device& device, Collective collective) {
  if (tensor.device() == device) {
    collective(tensor);
    return;
  }
  auto moved = tensor.to(device);
  collective(moved);
  tensor.copy_(moved);
}

}  // namespace

void Distributed::all_reduce_sum(torch::Tensor& tensor) {
  on_device(tensor, device_, [&](torch::Tensor& t) { all_reduce_sum_async(t)->wait(); });
}

void Distributed::all_reduce_max(torch::Tensor& tensor) {
  on_device(tensor, device_, [&](torch::Tensor& t) { all_reduce_max_here(t); });
}

void Distributed::all_reduce_max_here(torch::Tensor& tensor) {
  std::vector<torch::Tensor> tensors{tensor};
  c10d::AllreduceOptions options;
  options.reduceOp = c10d::ReduceOp::MAX;
  c10::intrusive_ptr<c10d::Work> work;
  try {
    work = impl_->group->allreduce(tensors, options);
  } catch (const std::exception& e) {
    impl_->fail("all-reduce (max)", e);
  }
  impl_->wait(work, "all-reduce (max)");
}

namespace {

class GroupPending : public Distributed::Pending {
 public:
  GroupPending(const Distributed::Impl* impl, c10::intrusive_ptr<c10d::Work> work)
      : impl_(impl), work_(std::move(work)) {}
  void wait() override { impl_->wait(work_, "all-reduce"); }

 private:
  const Distributed::Impl* impl_;
  c10::intrusive_ptr<c10d::Work> work_;
};

}  // namespace

std::unique_ptr<Distributed::Pending> Distributed::all_reduce_sum_async(torch::Tensor& tensor) {
  std::vector<torch::Tensor> tensors{tensor};
  try {
    return std::make_unique<GroupPending>(impl_.get(), impl_->group->allreduce(tensors));
  } catch (const std::exception& e) {
    impl_->fail("all-reduce", e);
  }
}

void Distributed::broadcast_from_main(std::vector<torch::Tensor>& tensors) {
  for (auto& tensor : tensors) {
    on_device(tensor, device_, [&](torch::Tensor& t) {
      std::vector<torch::Tensor> one{t};
      c10::intrusive_ptr<c10d::Work> work;
      try {
        work = impl_->group->broadcast(one);
      } catch (const std::exception& e) {
        impl_->fail("broadcast", e);
      }
      impl_->wait(work, "broadcast");
    });
  }
}

torch::Tensor Distributed::all_gather_cat(const torch::Tensor& tensor) {
  // Gloo gathers equal shapes: every rank pads to the largest batch, then the padding is cut.
  auto counts = torch::zeros({size()}, torch::kInt64);
  counts[rank()] = tensor.size(0);
  all_reduce_sum(counts);
  const int64_t largest = counts.max().item<int64_t>();
  auto padded_shape = tensor.sizes().vec();
  padded_shape[0] = largest;
  auto padded = torch::zeros(padded_shape, tensor.options());
  padded.narrow(0, 0, tensor.size(0)).copy_(tensor);
  std::vector<std::vector<torch::Tensor>> outputs(1);
  for (int r = 0; r < size(); ++r) outputs[0].push_back(torch::empty_like(padded));
  std::vector<torch::Tensor> inputs{padded};
  c10::intrusive_ptr<c10d::Work> work;
  try {
    work = impl_->group->allgather(outputs, inputs);
  } catch (const std::exception& e) {
    impl_->fail("all-gather", e);
  }
  impl_->wait(work, "all-gather");
  std::vector<torch::Tensor> parts;
  for (int r = 0; r < size(); ++r) parts.push_back(outputs[0][r].narrow(0, 0, counts[r].item<int64_t>()));
  return torch::cat(parts, 0);
}

void Distributed::barrier() {
  auto token = torch::zeros({1});
  all_reduce_sum(token);
}

int reduce_step_report(Distributed& dist, std::vector<std::pair<std::string, double>>& losses, int signal) {
  auto sums = torch::zeros({static_cast<int64_t>(losses.size())}, torch::kFloat64);
  for (size_t i = 0; i < losses.size(); ++i) sums[static_cast<int64_t>(i)] = losses[i].second * dist.step_weight();
  dist.all_reduce_sum(sums);
  for (size_t i = 0; i < losses.size(); ++i) losses[i].second = sums[static_cast<int64_t>(i)].item<double>();
  auto stop = torch::full({1}, static_cast<int64_t>(signal), torch::kInt64);
  dist.all_reduce_max(stop);
  return static_cast<int>(stop.item<int64_t>());
}

int threads_per_rank(int threads, int local_ranks) {
  if (threads > 0) return threads;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, cores / std::max(1, local_ranks));
}

bool main_rank_decides(Distributed& dist, bool value) {
  std::vector<torch::Tensor> flag{torch::full({1}, value ? 1 : 0, torch::kInt64)};
  dist.broadcast_from_main(flag);
  return flag[0].item<int64_t>() != 0;
}

Distributed* join_environment_world(torch::Device& device) {
  if (Distributed* d = Distributed::current()) {
    device = d->device();
    return d;
  }
  const auto world = world_from_environment();
  if (!world || world->world_size == 1) return nullptr;
  if (device.is_cuda()) device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(world->local_rank));
  return &Distributed::init(*world, device);
}

// ---- parameters -------------------------------------------------------------------------

namespace {

std::vector<torch::Tensor> state_tensors(torch::nn::Module& module) {
  std::vector<torch::Tensor> out;  // detached views: collectives write them in place
  for (auto& p : module.parameters()) out.push_back(p.detach());
  for (auto& b : module.buffers()) out.push_back(b.detach());
  return out;
}

uint64_t fnv1a(const torch::Tensor& t, uint64_t h) {
  const auto c = t.to(torch::kCPU).contiguous();
  const auto* bytes = static_cast<const unsigned char*>(c.data_ptr());
  const size_t n = c.numel() * c.element_size();
  for (size_t i = 0; i < n; ++i) h = (h ^ bytes[i]) * 0x100000001B3ULL;
  return h;
}

}  // namespace

void broadcast_modules(Distributed& dist, const std::vector<std::pair<std::string, torch::nn::Module*>>& modules) {
  torch::NoGradGuard no_grad;
  for (const auto& [name, module] : modules) {
    auto tensors = state_tensors(*module);
    dist.broadcast_from_main(tensors);
  }
}

void check_modules_agree(Distributed& dist, const std::vector<std::pair<std::string, torch::nn::Module*>>& modules) {
  torch::NoGradGuard no_grad;
  auto hashes = torch::zeros({2 * static_cast<int64_t>(modules.size())}, torch::kInt64);
  for (size_t i = 0; i < modules.size(); ++i) {
    uint64_t h = 0xCBF29CE484222325ULL;
    for (const auto& t : state_tensors(*modules[i].second)) h = fnv1a(t, h);
    const auto v = static_cast<int64_t>(h >> 1);  // non-negative, so -v cannot overflow
    hashes[2 * i] = v;
    hashes[2 * i + 1] = -v;
  }
  auto reduced = hashes.clone();
  dist.all_reduce_max(reduced);
  for (size_t i = 0; i < modules.size(); ++i) {
    if (reduced[2 * i].item<int64_t>() != -reduced[2 * i + 1].item<int64_t>()) {
      throw Error("data-parallel: the parameters or buffers of '" + modules[i].first +
                  "' differ between ranks (they must stay identical; a rank computed something else)");
    }
  }
}

// ---- gradient averaging -----------------------------------------------------------------

struct GradientAverager::State : std::enable_shared_from_this<GradientAverager::State> {
  struct Bucket {
    std::vector<size_t> params;   // indices into State::params
    std::vector<int64_t> offsets;
    torch::Tensor flat;
    std::vector<bool> got;
    int64_t ready = 0;
    std::unique_ptr<Distributed::Pending> pending;
  };
  Distributed* dist = nullptr;
  std::vector<torch::Tensor> params;
  std::vector<std::pair<size_t, size_t>> slot;  // param -> (bucket, position)
  std::vector<unsigned> hook_ids;
  std::vector<Bucket> buckets;
  std::vector<size_t> launched;  // bucket indices in launch order
  bool finish_queued = false;
  double wait_seconds = 0;
  std::mutex mutex;  // hooks of a CUDA backward may run on the device threads

  void launch(size_t b) {
    Bucket& bucket = buckets[b];
    for (size_t i = 0; i < bucket.params.size(); ++i) {
      if (!bucket.got[i]) bucket.flat.narrow(0, bucket.offsets[i], params[bucket.params[i]].numel()).zero_();
    }
    bucket.pending = dist->all_reduce_sum_async(bucket.flat);
    launched.push_back(b);
  }

  torch::Tensor on_grad(size_t param, const torch::Tensor& grad) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!finish_queued) {
      // Runs once this backward pass is over, on the thread that ran it.
      std::weak_ptr<State> weak = shared_from_this();
      torch::autograd::Engine::get_default_engine().queue_callback([weak] {
        if (auto s = weak.lock()) s->finish();
      });
      finish_queued = true;
    }
    const auto [b, pos] = slot[param];
    Bucket& bucket = buckets[b];
    require(!bucket.got[pos], "gradient averaging: a parameter received two gradients in one backward pass");
    bucket.flat.narrow(0, bucket.offsets[pos], grad.numel()).copy_(grad.reshape(-1)).mul_(dist->step_weight());
    bucket.got[pos] = true;
    if (++bucket.ready == static_cast<int64_t>(bucket.params.size())) launch(b);
    // The averaged gradient is added in finish(); adding zeros now keeps .grad exact.
    return torch::zeros_like(grad);
  }

  void finish() {
    std::lock_guard<std::mutex> lock(mutex);
    finish_queued = false;
    // Buckets whose parameters did not all get a gradient (unused in this pass) go last, in
    // bucket order, which every rank shares.
    for (size_t b = 0; b < buckets.size(); ++b) {
      if (buckets[b].ready > 0 && !buckets[b].pending) launch(b);
    }
    const auto start = std::chrono::steady_clock::now();
    std::exception_ptr error;
    for (size_t b : launched) {
      Bucket& bucket = buckets[b];
      try {
        bucket.pending->wait();
      } catch (...) {
        if (!error) error = std::current_exception();
      }
      bucket.pending.reset();
      if (!error) write_gradients(bucket);
      bucket.ready = 0;
      std::fill(bucket.got.begin(), bucket.got.end(), false);
    }
    launched.clear();
    wait_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (error) std::rethrow_exception(error);
  }

  void write_gradients(Bucket& bucket) {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < bucket.params.size(); ++i) {
      if (!bucket.got[i]) continue;
      auto& p = params[bucket.params[i]];
      const auto averaged = bucket.flat.narrow(0, bucket.offsets[i], p.numel()).view(p.sizes());
      if (p.grad().defined()) {
        p.mutable_grad().add_(averaged);
      } else {
        p.mutable_grad() = averaged.clone();
      }
    }
  }
};

GradientAverager::GradientAverager(Distributed& dist,
                                   const std::vector<std::pair<std::string, torch::nn::Module*>>& modules,
                                   int64_t bucket_bytes)
    : state_(std::make_shared<State>()) {
  State& s = *state_;
  s.dist = &dist;
  std::unordered_set<const void*> seen;
  for (const auto& [name, module] : modules) {
    // Reverse registration order, as DDP: the last layers' gradients are ready first.
    auto ps = module->parameters();
    std::reverse(ps.begin(), ps.end());
    int64_t bucket_bytes_now = bucket_bytes;  // forces a new bucket per module
    for (auto& p : ps) {
      if (!p.requires_grad() || !seen.insert(p.unsafeGetTensorImpl()).second) continue;
      const int64_t bytes = p.numel() * static_cast<int64_t>(p.element_size());
      if (bucket_bytes_now + bytes > bucket_bytes && bucket_bytes_now > 0) {
        s.buckets.emplace_back();
        bucket_bytes_now = 0;
      }
      auto& bucket = s.buckets.back();
      const int64_t offset =
          bucket.offsets.empty() ? 0 : bucket.offsets.back() + s.params[bucket.params.back()].numel();
      s.slot.emplace_back(s.buckets.size() - 1, bucket.params.size());
      bucket.params.push_back(s.params.size());
      bucket.offsets.push_back(offset);
      bucket.got.push_back(false);
      s.params.push_back(p);
      bucket_bytes_now += bytes;
    }
  }
  for (auto& bucket : s.buckets) {
    const auto& last = s.params[bucket.params.back()];
    bucket.flat = torch::zeros({bucket.offsets.back() + last.numel()}, last.options().requires_grad(false));
  }
  std::weak_ptr<State> weak = state_;
  for (size_t i = 0; i < s.params.size(); ++i) {
    s.hook_ids.push_back(s.params[i].register_hook([weak, i](torch::Tensor grad) -> torch::Tensor {
      auto state = weak.lock();
      return state ? state->on_grad(i, grad) : grad;
    }));
  }
}

GradientAverager::~GradientAverager() {
  for (size_t i = 0; i < state_->params.size(); ++i) state_->params[i].remove_hook(state_->hook_ids[i]);
}

int64_t GradientAverager::bucket_count() const { return static_cast<int64_t>(state_->buckets.size()); }

double GradientAverager::wait_seconds() const { return state_->wait_seconds; }

int64_t global_batch_offset(Distributed& dist, int64_t local_count) {
  auto counts = torch::zeros({dist.size()}, torch::kInt64);
  counts[dist.rank()] = local_count;
  dist.all_reduce_sum(counts);
  return counts.narrow(0, 0, dist.rank()).sum().item<int64_t>();
}

// ---- autograd functions over ranks ------------------------------------------------------

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

Distributed& world_or_fail() {
  Distributed* d = Distributed::current();
  require(d != nullptr, "no data-parallel world");
  return *d;
}

// Sum over ranks whose backward is the same sum of the upstream gradients, weighted as the
// averager weights parameter gradients (w_r g_r summed, then / w_r), so that the gradient that
// reaches parameters through it is the global batch's.
struct AllReduceSum : public torch::autograd::Function<AllReduceSum> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x) {
    Distributed& d = world_or_fail();
    ctx->saved_data["weight"] = d.step_weight();
    auto y = x.detach().clone().contiguous();
    d.all_reduce_sum(y);
    return y;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const double w = ctx->saved_data["weight"].toDouble();
    auto g = (grads[0] * w).contiguous();
    world_or_fail().all_reduce_sum(g);
    return {g / w};
  }
};

struct GatherBatch : public torch::autograd::Function<GatherBatch> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor local) {
    Distributed& d = world_or_fail();
    ctx->saved_data["begin"] = global_batch_offset(d, local.size(0));
    ctx->saved_data["count"] = local.size(0);
    ctx->saved_data["weight"] = d.step_weight();
    return d.all_gather_cat(local.detach().contiguous());
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const int64_t begin = ctx->saved_data["begin"].toInt();
    const int64_t count = ctx->saved_data["count"].toInt();
    return {grads[0].narrow(0, begin, count) / ctx->saved_data["weight"].toDouble()};
  }
};

// torch.nn.SyncBatchNorm's forward: mean, then biased variance over every rank's samples (two
// passes, as LibTorch's own batch_norm), running statistics updated with the unbiased variance.
torch::Tensor sync_batch_norm(torch::nn::BatchNorm2dImpl& bn, const torch::Tensor& x) {
  const int64_t channels = x.size(1);
  const std::vector<int64_t> reduce_dims{0, 2, 3};
  const double local_count = static_cast<double>(x.numel() / channels);
  auto count_tensor = torch::full({1}, local_count, x.options().dtype(torch::kFloat64));
  Distributed::current()->all_reduce_sum(count_tensor);
  const double count = count_tensor.item<double>();
  const auto mean = AllReduceSum::apply(x.sum(reduce_dims)) / count;
  const auto centered = x - mean.view({1, channels, 1, 1});
  const auto var = AllReduceSum::apply(centered.pow(2).sum(reduce_dims)) / count;
  const double eps = bn.options.eps();
  auto y = centered * torch::rsqrt(var + eps).view({1, channels, 1, 1});
  if (bn.options.affine()) y = y * bn.weight.view({1, channels, 1, 1}) + bn.bias.view({1, channels, 1, 1});
  if (bn.options.track_running_stats() && bn.running_mean.defined()) {
    torch::NoGradGuard no_grad;
    bn.num_batches_tracked.add_(1);
    const double momentum = bn.options.momentum().has_value()
                                ? *bn.options.momentum()
                                : 1.0 / static_cast<double>(bn.num_batches_tracked.item<int64_t>());
    const double unbias = count > 1 ? count / (count - 1) : 1.0;
    bn.running_mean.mul_(1 - momentum).add_(mean.detach() * momentum);
    bn.running_var.mul_(1 - momentum).add_(var.detach() * (momentum * unbias));
  }
  return y;
}

class SyncBatchNormOverride : public nn::LayerOverride {
 public:
  torch::Tensor forward(torch::nn::Module& layer, const torch::Tensor& x) override {
    auto* bn = dynamic_cast<torch::nn::BatchNorm2dImpl*>(&layer);
    if (bn == nullptr || !bn->is_training() || Distributed::current() == nullptr) return {};
    return sync_batch_norm(*bn, x);
  }
};

SyncBatchNormOverride g_sync_batch_norm;

}  // namespace

SyncBatchNormScope::SyncBatchNormScope(Distributed& dist) {
  (void)dist;  // the override finds the world itself; taking it documents that one must exist
  require(nn::set_layer_override(&g_sync_batch_norm) == nullptr, "a layer override is already installed");
}

SyncBatchNormScope::~SyncBatchNormScope() { nn::set_layer_override(nullptr); }

torch::Tensor all_gather_batch(const torch::Tensor& local) {
  if (!local.defined() || Distributed::current() == nullptr || Distributed::current()->size() == 1) return local;
  if (!local.requires_grad()) {
    torch::NoGradGuard no_grad;
    return Distributed::current()->all_gather_cat(local.contiguous());
  }
  return GatherBatch::apply(local);
}

nn::GeneratorOutput all_gather_batch(const nn::GeneratorOutput& local) {
  nn::GeneratorOutput global;
  global.image = all_gather_batch(local.image);
  for (const auto& tap : local.taps) global.taps.push_back(all_gather_batch(tap));
  return global;
}

}  // namespace ganlite::train
