// Training iterations/s of a pix2pix step (G + D update) for ResNet-9 generators, ngf 64 and 16,
// at 64x64 and 256x256, batch 1 and 4. Compare with bench/train_speed_pytorch.py (same step in
// PyTorch eager). Usage: bench_train_speed [--iters N] [--threads N] [--quick] (--quick: 64x64 only)
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "ganlite/data/loader.h"
#include "ganlite/train/pix2pix_task.h"
#include "ganlite/util/device.h"

int main(int argc, char** argv) {
  int iters = 3;
  int threads = 0;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--iters") && i + 1 < argc) iters = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--quick")) quick = true;
    else {
      std::fprintf(stderr, "usage: %s [--iters N] [--threads N] [--quick]\n", argv[0]);
      return 2;
    }
  }
  ganlite::set_threads(threads);
  std::printf("pix2pix step (G + D update), ResNet-9, ndf 64, threads %d, %d timed iterations after 1 warm-up\n",
              torch::get_num_threads(), iters);
  std::printf("%-6s %-5s %-6s %10s %10s\n", "ngf", "size", "batch", "it/s", "ms/it");
  for (int size : {64, 256}) {
    if (quick && size > 64) continue;
    for (int ngf : {16, 64}) {
      for (int batch : {1, 4}) {
        ganlite::train::TrainConfig config;
        config.dataroot = "unused";
        config.generator.ngf = ngf;
        config.ndf = 64;
        config.gan_mode = "lsgan";
        torch::manual_seed(0);
        ganlite::train::Pix2PixTask task(config, torch::kCPU);
        ganlite::data::Batch b;
        b.a = torch::rand({batch, 3, size, size}) * 2 - 1;
        b.b = torch::rand({batch, 3, size, size}) * 2 - 1;
        task.train_step(b);  // warm-up
        const auto start = std::chrono::steady_clock::now();
        for (int i = 0; i < iters; ++i) task.train_step(b);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::printf("%-6d %-5d %-6d %10.3f %10.1f\n", ngf, size, batch, iters / s, 1000.0 * s / iters);
        std::fflush(stdout);
      }
    }
  }
  return 0;
}
