#include "ganlite/util/device.h"

#include <dlfcn.h>
#include <sched.h>
#include <torch/torch.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <cmath>
#include <fstream>
#include <thread>

#include "ganlite/util/error.h"

namespace ganlite {

torch::Device parse_device(const std::string& name) {
  if (name == "cpu") return torch::Device(torch::kCPU);
  if (name.rfind("cuda", 0) == 0) {
    if (!torch::cuda::is_available()) {
      throw UsageError("device '" + name + "' requested but CUDA is not available in this build or machine " +
                       "(valid here: cpu)");
    }
    torch::Device device(name);  // validates the ":N" suffix
    if (device.has_index() && device.index() >= static_cast<int>(torch::cuda::device_count())) {
      throw UsageError("device '" + name + "': only " + std::to_string(torch::cuda::device_count()) +
                       " CUDA device(s) present");
    }
    return device;
  }
  throw_bad_choice("device", name, {"cpu", "cuda", "cuda:N"});
}

std::vector<std::string> available_devices() {
  std::vector<std::string> devices{"cpu"};
  if (torch::cuda::is_available()) {
    for (size_t i = 0; i < torch::cuda::device_count(); ++i) devices.push_back("cuda:" + std::to_string(i));
  }
  return devices;
}

void single_threaded_blas() {
  using SetThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(1);
}

int available_cpus() {
  int cpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) cpus = std::max(1, CPU_COUNT(&set));
  // A cgroup v2 CPU quota ("max 100000" when unlimited): more threads than the quota allows only
  // wait for each other.
  std::ifstream quota_file("/sys/fs/cgroup/cpu.max");
  std::string quota;
  double period = 0;
  if (quota_file >> quota >> period && quota != "max" && period > 0) {
    const double quota_cpus = std::stod(quota) / period;
    cpus = std::min(cpus, std::max(1, static_cast<int>(std::ceil(quota_cpus - 0.01))));
  }
  return cpus;
}

void set_threads(int threads) {
  require(threads >= 0, "--threads must be >= 0, got " + std::to_string(threads));
  // Debian's OpenMP build starts with one thread whatever the core count, so 0 means one per CPU
  // this process may use (affinity mask, cgroup quota), not per CPU of the machine.
  if (threads == 0) threads = available_cpus();
  torch::set_num_threads(threads);
  single_threaded_blas();
}

int idle_cpus() {
  const int cpus = available_cpus();
  if (cpus != static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN))) return cpus;
  int fewest_others = -1;
  for (int sample = 0; sample < 5; ++sample) {
    if (sample > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::ifstream stat("/proc/stat");
    std::string key;
    long value = 0;
    while (stat >> key) {
      if (key == "procs_running" && stat >> value) break;
      stat.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
    }
    if (key != "procs_running" || value < 1) return cpus;
    const int others = static_cast<int>(value) - 1;  // less the thread reading
    fewest_others = fewest_others < 0 ? others : std::min(fewest_others, others);
  }
  return std::clamp(cpus - fewest_others, 1, cpus);
}

void set_latency_threads(int threads) {
  require(threads >= 0, "--threads must be >= 0, got " + std::to_string(threads));
  set_threads(threads == 0 ? idle_cpus() : threads);
}

}  // namespace ganlite
