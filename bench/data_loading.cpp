// Data pipeline figures: synthetic dataset generation (images/s) and DataLoader throughput
// (images/s through decode, resize, crop, flip and batching) at 64 and 256 pixels.
// Usage: bench_data_loading [--quick]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include "ganlite/data/dataset.h"
#include "ganlite/data/loader.h"
#include "ganlite/data/synthetic.h"
#include "ganlite/util/progress.h"

namespace fs = std::filesystem;
namespace data = ganlite::data;

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  ganlite::ProgressBar::set_enabled(false);
  const fs::path root = fs::temp_directory_path() / ("ganlite_bench_data_" + std::to_string(::getpid()));
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  std::printf("cores %u\n", cores);
  std::printf("%-8s %-14s %8s %12s %14s\n", "size", "kind", "images", "gen img/s", "loader img/s");
  try {
    for (const int size : {64, 256}) {
      for (const std::string kind : {"edges2shapes", "labels2scenes"}) {
        data::SyntheticOptions o;
        o.kind = kind;
        o.size = size;
        o.count = (size == 64 ? 1600 : 200) / (quick ? 4 : 1);
        o.seed = 1;
        const fs::path out = root / (kind + std::to_string(size));
        const auto summary = data::make_synthetic_dataset(out, o);
        const double gen_rate = static_cast<double>(summary.files_written) / summary.seconds;

        // The training pipeline of pix2pix: resize to load_size (286/256 of the crop), random crop, flip.
        data::DatasetOptions d;
        d.transform.preprocess = "resize_and_crop";
        d.transform.crop_size = size;
        d.transform.load_size = size * 286 / 256;
        auto dataset = data::open_aligned(out, "train", d);
        data::LoaderOptions l;
        l.batch_size = 8;
        l.workers = static_cast<int>(cores);
        l.prefetch = 8;
        data::DataLoader loader(dataset, l);
        loader.start_epoch(0);
        const auto start = std::chrono::steady_clock::now();
        int64_t images = 0;
        while (auto batch = loader.next()) images += batch->a.size(0);
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::printf("%-8d %-14s %8lld %12.0f %14.0f\n", size, kind.c_str(), static_cast<long long>(images), gen_rate,
                    static_cast<double>(images) / seconds);
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_data_loading: %s\n", e.what());
    fs::remove_all(root);
    return 1;
  }
  fs::remove_all(root);
  std::printf("(gen img/s counts every file written: A|B pairs, and label maps for labels2scenes)\n");
  return 0;
}
