// Data-parallel training on c10d/Gloo (train/distributed.h): pix2pix training throughput with 1
// and 2 local processes (ResNet-9, the same global batch, the cores split between processes),
// and the communication time per step for the gradients of the ResNet-9 ngf 64 teacher
// (11.4M weights): all-reduce alone, and what remains exposed after the backward pass when
// the buckets are launched from autograd hooks.
// Usage: bench_data_parallel [--iters N] [--ngf N] [--size N] [--batch N] (batch per process)
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "ganlite/nn/generator.h"
#include "ganlite/train/distributed.h"
#include "ganlite/train/networks.h"
#include "ganlite/train/pix2pix_task.h"
#include "ganlite/util/device.h"

namespace {

using ganlite::train::Distributed;
using Clock = std::chrono::steady_clock;

struct Settings {
  int iters = 4;
  int ngf = 16;
  int size = 64;
  int batch = 2;  // per process
};

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

Distributed* join(int rank, int world, int port) {
  ganlite::set_threads(ganlite::train::threads_per_rank(0, world));
  if (world == 1) return nullptr;
  ganlite::train::WorldInfo w;
  w.rank = w.local_rank = rank;
  w.world_size = w.local_world_size = world;
  w.master_port = port;
  return &Distributed::init(w, torch::kCPU);
}

// One worker: pix2pix steps on random batches; rank 0 prints the throughput.
void train_worker(int rank, int world, int port, int batch, const Settings& s) {
  Distributed* dist = join(rank, world, port);
  ganlite::train::TrainConfig config;
  config.dataroot = "unused";
  config.generator.ngf = s.ngf;
  config.ndf = 64;
  config.gan_mode = "lsgan";
  torch::manual_seed(0);
  ganlite::train::Pix2PixTask task(config, torch::kCPU);
  std::unique_ptr<ganlite::train::GradientAverager> averager;
  if (dist) {
    ganlite::train::broadcast_modules(*dist, task.modules());
    averager = std::make_unique<ganlite::train::GradientAverager>(*dist, task.modules());
    dist->set_step_weight(1.0 / world);
  }
  ganlite::data::Batch b;
  b.a = torch::rand({batch, 3, s.size, s.size}) * 2 - 1;
  b.b = torch::rand({batch, 3, s.size, s.size}) * 2 - 1;
  task.train_step(b);  // warm-up
  if (dist) dist->barrier();
  const auto start = Clock::now();
  for (int i = 0; i < s.iters; ++i) task.train_step(b);
  if (dist) dist->barrier();
  const double t = seconds_since(start) / s.iters;
  if (rank == 0) {
    std::printf("%-6d %-11d %-7d %-8d %10.2f %10.1f %10.1f\n", world, batch, world * batch, torch::get_num_threads(),
                world * batch / t, 1000 * t,
                averager ? 1000 * averager->wait_seconds() / (s.iters + 1) : 0.0);
    std::fflush(stdout);
  }
}

// Two workers: the teacher's gradients all-reduced in DDP-sized buckets, alone and from hooks.
void allreduce_worker(int rank, int world, int port, const Settings& s) {
  Distributed* dist = join(rank, world, port);
  ganlite::nn::ArchConfig arch;
  arch.ngf = 64;
  torch::manual_seed(0);
  auto teacher = ganlite::nn::make_generator(arch);
  std::vector<std::pair<std::string, torch::nn::Module*>> modules{{"G", teacher.get()}};
  ganlite::train::GradientAverager averager(*dist, modules);
  dist->set_step_weight(1.0 / world);
  int64_t numel = 0;
  for (const auto& p : teacher->parameters()) numel += p.numel();
  // Alone: the same buckets, launched back to back and waited.
  std::vector<torch::Tensor> buckets;
  constexpr int64_t kBucketFloats = ganlite::train::GradientAverager::kDefaultBucketBytes / 4;
  for (int64_t left = numel; left > 0; left -= kBucketFloats) {
    buckets.push_back(torch::rand({std::min(left, kBucketFloats)}));
  }
  auto reduce_all = [&] {
    std::vector<std::unique_ptr<Distributed::Pending>> pending;
    for (auto& t : buckets) pending.push_back(dist->all_reduce_sum_async(t));
    for (auto& p : pending) p->wait();
  };
  reduce_all();  // warm-up
  dist->barrier();
  auto start = Clock::now();
  for (int i = 0; i < s.iters; ++i) reduce_all();
  const double alone = seconds_since(start) / s.iters;
  // From hooks during a backward pass of the teacher on a small input (64x64, batch 1).
  const auto x = torch::rand({1, 3, 64, 64});
  teacher->forward(x).mean().backward();  // warm-up
  const double waited_before = averager.wait_seconds();
  dist->barrier();
  start = Clock::now();
  for (int i = 0; i < s.iters; ++i) teacher->forward(x).mean().backward();
  const double step = seconds_since(start) / s.iters;
  const double waited = (averager.wait_seconds() - waited_before) / s.iters;
  if (rank == 0) {
    std::printf("ResNet-9 ngf 64 gradients: %lld floats (%.1f MB) in %lld buckets of <= 25 MB, %d processes\n",
                static_cast<long long>(numel), numel * 4 / 1e6, static_cast<long long>(averager.bucket_count()), world);
    std::printf("  all-reduce alone:                          %8.1f ms/step (%.2f GB/s of gradient)\n", 1000 * alone,
                numel * 4 / alone / 1e9);
    std::printf("  from hooks, exposed after backward:        %8.1f ms/step (forward+backward+reduce %.1f ms)\n",
                1000 * waited, 1000 * step);
    std::fflush(stdout);
  }
}

// Runs `worker(rank)` in `world` forked processes; false when one failed.
template <typename Worker>
bool run_processes(int world, Worker worker) {
  const int port = ganlite::train::free_local_port();
  std::vector<pid_t> pids;
  for (int rank = 0; rank < world; ++rank) {
    const pid_t pid = fork();
    if (pid == 0) {
      try {
        worker(rank, world, port);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "rank %d: %s\n", rank, e.what());
        _exit(1);
      }
      std::fflush(stdout);
      _exit(0);
    }
    pids.push_back(pid);
  }
  bool ok = true;
  for (pid_t pid : pids) {
    int status = 0;
    waitpid(pid, &status, 0);
    ok = ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--iters") && i + 1 < argc) s.iters = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--ngf") && i + 1 < argc) s.ngf = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--size") && i + 1 < argc) s.size = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--batch") && i + 1 < argc) s.batch = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: %s [--iters N] [--ngf N] [--size N] [--batch N]\n", argv[0]);
      return 2;
    }
  }
  // Torch stays untouched in this process: workers are forked from it.
  std::printf("data-parallel pix2pix step (G + D update), ResNet-9 ngf %d, ndf 64, %dx%d, Gloo on CPU, %u cores, "
              "%d timed iterations after 1 warm-up\n",
              s.ngf, s.size, s.size, std::thread::hardware_concurrency(), s.iters);
  std::printf("%-6s %-11s %-7s %-8s %10s %10s %10s\n", "procs", "batch/proc", "global", "threads", "images/s",
              "ms/step", "wait ms");
  std::fflush(stdout);
  bool ok = true;
  for (const auto& [world, batch] : std::vector<std::pair<int, int>>{{1, 2 * s.batch}, {2, s.batch}, {1, s.batch}}) {
    ok = run_processes(world, [&](int rank, int n, int port) { train_worker(rank, n, port, batch, s); }) && ok;
  }
  ok = run_processes(2, [&](int rank, int n, int port) { allreduce_worker(rank, n, port, s); }) && ok;
  return ok ? 0 : 1;
}
