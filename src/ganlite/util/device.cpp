#include "ganlite/util/device.h"

#include <dlfcn.h>
#include <sched.h>
#include <torch/torch.h>

#include <algorithm>
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

}  // namespace ganlite
