// Time to compute FID statistics (Inception pool3 features + mu/sigma) of N 64x64 images with
// random Inception weights: the cost of `ganlite stats` / `ganlite fid` minus image decoding.
// Usage: bench_fid_stats [--count 1000] [--size 64] [--batch-size 50] [--threads 0] [--device cpu]
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "ganlite/metrics/fid.h"
#include "ganlite/metrics/inception.h"
#include "ganlite/torch_compat.h"
#include "ganlite/util/device.h"
#include "ganlite/util/error.h"

int main(int argc, char** argv) {
  int64_t count = 1000;
  int64_t size = 64;
  int64_t batch_size = 50;
  int threads = 0;
  std::string device_name = "cpu";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "usage: bench_fid_stats [--count N] [--size S] [--batch-size B] [--threads T] [--device D]\n");
      return 2;
    }
    const std::string value = argv[++i];
    if (arg == "--count") count = std::atoll(value.c_str());
    else if (arg == "--size") size = std::atoll(value.c_str());
    else if (arg == "--batch-size") batch_size = std::atoll(value.c_str());
    else if (arg == "--threads") threads = std::atoi(value.c_str());
    else if (arg == "--device") device_name = value;
    else {
      std::fprintf(stderr, "unknown option %s\n", arg.c_str());
      return 2;
    }
  }
  if (count < 2 || size < 1 || batch_size < 1) {
    std::fprintf(stderr, "--count must be >= 2, --size and --batch-size >= 1\n");
    return 2;
  }
  try {
    ganlite::set_threads(threads);
    const auto device = ganlite::parse_device(device_name);
    torch::manual_seed(0);
    ganlite::metrics::FidInceptionV3 net;
    ganlite::metrics::init_random_inception(net, 0);
    net->to(device);
    net->eval();
    const auto images = torch::randint(0, 256, {count, 3, size, size}, torch::kUInt8);
    // One warm-up batch so that one-time allocator and oneDNN setup do not count.
    ganlite::metrics::inception_features(net, images.slice(0, 0, std::min<int64_t>(2, count)), 2);
    ganlite::compat::synchronize(device);
    const auto start = std::chrono::steady_clock::now();
    const auto features = ganlite::metrics::inception_features(net, images, batch_size, "inception");
    const auto stats = ganlite::metrics::compute_statistics(features);
    ganlite::compat::synchronize(device);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("fid_stats: %lld images %lldx%lld (resized to 299), batch %lld, %d threads, %s: %.2f s (%.1f img/s), "
                "sigma %lldx%lld\n",
                static_cast<long long>(count), static_cast<long long>(size), static_cast<long long>(size),
                static_cast<long long>(batch_size), torch::get_num_threads(), device.str().c_str(), seconds,
                static_cast<double>(count) / seconds, static_cast<long long>(stats.sigma.size(0)),
                static_cast<long long>(stats.sigma.size(1)));
  } catch (const ganlite::Error& e) {
    std::fprintf(stderr, "bench_fid_stats: %s\n", e.what());
    return 1;
  }
  return 0;
}
