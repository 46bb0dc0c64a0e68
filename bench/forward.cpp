// Forward time of the generators (batch 1, no grad, eval mode): median of a few runs at 64x64 and
// 256x256. `bench_forward [--reps N] [--device cpu|cuda] [--threads N]`; the default run is short.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "ganlite/nn/generator.h"
#include "ganlite/nn/profiler.h"
#include "ganlite/torch_compat.h"
#include "ganlite/util/device.h"
#include "ganlite/util/error.h"

namespace {

struct Case {
  std::string label;
  ganlite::nn::ArchConfig config;
};

ganlite::nn::ArchConfig config(const std::string& arch, int ngf, const std::string& norm = "instance") {
  ganlite::nn::ArchConfig c;
  c.arch = arch;
  c.ngf = ngf;
  c.norm = norm;
  return c;
}

double median_ms(ganlite::nn::GeneratorImpl& g, const torch::Tensor& x, int reps, const torch::Device& device) {
  std::vector<double> times;
  g.forward(x);  // warm-up: allocator, oneDNN primitives
  ganlite::compat::synchronize(device);
  for (int i = 0; i < reps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    g.forward(x);
    ganlite::compat::synchronize(device);
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 3;
  std::string device_name = "cpu";
  int threads = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--reps" && i + 1 < argc) {
      reps = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--device" && i + 1 < argc) {
      device_name = argv[++i];
    } else if (arg == "--threads" && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--reps N] [--device cpu|cuda[:N]] [--threads N]\n", argv[0]);
      return arg == "--help" || arg == "-h" ? 0 : 2;
    }
  }
  try {
    const torch::Device device = ganlite::parse_device(device_name);
    ganlite::set_threads(threads);
    torch::NoGradGuard no_grad;
    const std::vector<Case> cases{{"resnet ngf64", config("resnet", 64)},
                                  {"resnet ngf16", config("resnet", 16)},
                                  {"mobile_resnet ngf16", config("mobile_resnet", 16)},
                                  {"inception ngf64", config("inception", 64, "instance_affine")},
                                  {"unet ngf64", config("unet", 64, "batch")}};
    std::printf("device %s, threads %d, median of %d runs, batch 1\n", device_name.c_str(), torch::get_num_threads(),
                reps);
    std::printf("%-22s %10s %10s %12s %12s\n", "model", "MACs@256", "params", "64x64 ms", "256x256 ms");
    for (const auto& c : cases) {
      auto g = ganlite::nn::make_generator(c.config);
      g->to(device);
      g->eval();
      const auto profile = ganlite::nn::profile_generator(*g, 256);
      double ms[2];
      const int64_t sizes[2] = {64, 256};
      for (int s = 0; s < 2; ++s) {
        const auto x = torch::randn({1, 3, sizes[s], sizes[s]}, torch::TensorOptions().device(device));
        // unet_256 needs 256x256; at 64x64 the bottleneck would vanish.
        ms[s] = c.config.arch == "unet" && sizes[s] < 256 ? -1 : median_ms(*g, x, reps, device);
      }
      std::printf("%-22s %10s %10s", c.label.c_str(), ganlite::nn::format_macs(profile.macs).c_str(),
                  ganlite::nn::format_params(profile.params).c_str());
      for (double m : ms) {
        if (m < 0) {
          std::printf(" %12s", "n/a");
        } else {
          std::printf(" %12.1f", m);
        }
      }
      std::printf("\n");
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_forward: %s\n", e.what());
    return 1;
  }
  return 0;
}
