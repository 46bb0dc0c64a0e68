// Device and thread selection shared by every command: `--device cpu|cuda[:N]`, `--threads N`.
#pragma once
#include <torch/types.h>

#include <string>
#include <vector>

namespace ganlite {

// Parses "cpu", "cuda", "cuda:1"; throws UsageError naming the valid choices, or when CUDA
// is asked for but this build or machine has none.
torch::Device parse_device(const std::string& name);

// Names of the devices usable here, "cpu" first.
std::vector<std::string> available_devices();

// CPUs this process may run on: its affinity mask (taskset, a container's cpuset), capped by a
// cgroup v2 CPU quota; at least 1.
int available_cpus();

// Sets LibTorch's intra-op threads; 0 means available_cpus(). Also makes BLAS single-threaded.
void set_threads(int threads);

// available_cpus() less those other processes keep busy now: the fewest other runnable tasks seen
// in 5 samples of /proc/stat's procs_running 10 ms apart (a job that comes and goes is not
// counted; a busy loop is). At least 1. Only where this process may run on every online CPU: a
// host-wide count means nothing inside a cpuset or a CPU quota, where it is available_cpus().
int idle_cpus();

// For latency-bound commands (bench, serve): as set_threads, but 0 means idle_cpus(). An
// OpenMP team with a thread on a core another process holds waits for it at every join (issue
// 19: 2 threads beside a busy process took 2.3x their quiet time, 1 thread 1.9x).
void set_latency_threads(int threads);

// OpenBLAS's pthread build (Debian's libopenblas0-pthread) keeps worker threads of its own that
// spin on sched_yield after every call. LibTorch sends small convs (batch 1, at most 20480 input
// values: a 64x64 student's trunk) and matrix products there, so next to LibTorch's OpenMP
// threads they oversubscribe the cores: the demo student's median went from 2.3 to 58 ms with
// the other core busy. With this, BLAS calls run on the calling thread. A no-op for other BLAS
// libraries (looked up at run time; MKL builds have no such symbol).
void single_threaded_blas();

}  // namespace ganlite
