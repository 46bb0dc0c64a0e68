#include "ganlite/data/dataset.h"

#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <iostream>
#include <mutex>
#include <opencv2/imgproc.hpp>
#include <thread>

#include "ganlite/data/image_io.h"
#include "ganlite/data/sample_rng.h"
#include "ganlite/util/error.h"

namespace ganlite::data {

namespace fs = std::filesystem;

namespace {

// Where a sample's crop lands and whether it is mirrored; drawn once so that aligned A and B
// get exactly the same geometry (pytorch-CycleGAN-and-pix2pix get_params).
struct TransformParams {
  cv::Size resized;
  int x = 0;
  int y = 0;
  bool flip = false;
};

bool preprocess_crops(const std::string& preprocess) { return preprocess != "none"; }

void validate_options(const DatasetOptions& options) {
  const auto& t = options.transform;
  const std::vector<std::string> valid{"resize_and_crop", "scale_width", "crop", "none"};
  if (std::find(valid.begin(), valid.end(), t.preprocess) == valid.end()) {
    throw_bad_choice("preprocess", t.preprocess, valid);
  }
  require(t.load_size > 0, "load_size must be > 0, got " + std::to_string(t.load_size));
  require(t.crop_size > 0, "crop_size must be > 0, got " + std::to_string(t.crop_size));
  if (t.preprocess == "resize_and_crop" || t.preprocess == "scale_width") {
    require(t.load_size >= t.crop_size, "load_size (" + std::to_string(t.load_size) + ") must be >= crop_size (" +
                                            std::to_string(t.crop_size) + ") for preprocess " + t.preprocess);
  }
  if (options.direction != "AtoB" && options.direction != "BtoA") {
    throw_bad_choice("direction", options.direction, {"AtoB", "BtoA"});
  }
}

// Size after the resize step of each preprocess mode (before cropping).
cv::Size resized_size(const TransformOptions& t, cv::Size size) {
  if (t.preprocess == "resize_and_crop") return {t.load_size, t.load_size};
  if (t.preprocess == "scale_width") {
    if (size.width == t.load_size && size.height >= t.crop_size) return size;
    const int h = std::max(static_cast<int>(static_cast<int64_t>(t.load_size) * size.height / size.width), t.crop_size);
    return {t.load_size, h};
  }
  if (t.preprocess == "none") {
    // The public code rounds each side to a multiple of 4 so the generator's down/up sampling fits
    // (Python's round: halves go to even, as nearbyint does in the default rounding mode).
    const auto round4 = [](int v) { return std::max(4, static_cast<int>(std::nearbyint(v / 4.0)) * 4); };
    return {round4(size.width), round4(size.height)};
  }
  return size;  // crop
}

TransformParams draw_params(const TransformOptions& t, cv::Size size, SampleRng& rng) {
  TransformParams p;
  p.resized = resized_size(t, size);
  if (preprocess_crops(t.preprocess)) {
    p.x = static_cast<int>(rng.below(static_cast<uint64_t>(std::max(0, p.resized.width - t.crop_size)) + 1));
    p.y = static_cast<int>(rng.below(static_cast<uint64_t>(std::max(0, p.resized.height - t.crop_size)) + 1));
  }
  p.flip = t.flip && rng.below(2) == 1;
  return p;
}

torch::Tensor apply_transform(const TransformOptions& t, const TransformParams& p, const cv::Mat& rgb,
                              const fs::path& path) {
  cv::Mat image = rgb;
  if (image.size() != p.resized) {
    // PIL's bicubic resize antialiases when shrinking; INTER_AREA is OpenCV's closest match.
    const bool shrink = p.resized.width < image.cols && p.resized.height < image.rows;
    cv::Mat resized;
    cv::resize(image, resized, p.resized, 0, 0, shrink ? cv::INTER_AREA : cv::INTER_CUBIC);
    image = resized;
  }
  if (preprocess_crops(t.preprocess)) {
    if (image.cols < t.crop_size || image.rows < t.crop_size) {
      throw Error("image " + path.string() + " is " + std::to_string(image.cols) + "x" + std::to_string(image.rows) +
                  " after preprocess " + t.preprocess + ", smaller than crop_size " + std::to_string(t.crop_size));
    }
    image = image(cv::Rect(p.x, p.y, t.crop_size, t.crop_size));
  }
  if (p.flip) {
    cv::Mat flipped;
    cv::flip(image, flipped, 1);
    image = flipped;
  }
  return image_to_tensor(image);
}

// Reads every file with `check` on a few threads and returns those that pass; the others are
// reported on stderr and counted.
std::vector<fs::path> filter_readable(const std::vector<fs::path>& files,
                                      const std::function<void(const fs::path&)>& check, size_t& skipped) {
  std::vector<char> ok(files.size(), 0);
  std::vector<std::string> reasons(files.size());
  std::atomic<size_t> next{0};
  const size_t n_threads = std::min<size_t>(std::max(1u, std::thread::hardware_concurrency()), files.size());
  std::vector<std::thread> threads;
  for (size_t t = 0; t < n_threads; ++t) {
    threads.emplace_back([&] {
      for (size_t i = next++; i < files.size(); i = next++) {
        try {
          check(files[i]);
          ok[i] = 1;
        } catch (const std::exception& e) {
          reasons[i] = e.what();
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  std::vector<fs::path> good;
  size_t reported = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    if (ok[i]) {
      good.push_back(files[i]);
      continue;
    }
    ++skipped;
    if (++reported <= 10) std::cerr << "ganlite: warning: skipping unreadable image: " << reasons[i] << "\n";
  }
  if (reported > 10) std::cerr << "ganlite: warning: ... and " << (reported - 10) << " more unreadable images skipped\n";
  return good;
}

std::vector<fs::path> list_folder(const fs::path& dir, const std::string& layout) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error("dataset folder " + dir.string() + " not found (expected " + layout + ")");
  return list_images(dir);
}

void require_nonempty(const std::vector<fs::path>& files, const fs::path& dir, const std::string& layout,
                      size_t skipped) {
  if (!files.empty()) return;
  throw Error("dataset folder " + dir.string() + " holds no readable images" +
              (skipped ? " (" + std::to_string(skipped) + " skipped as unreadable)" : std::string()) +
              " (expected " + layout + "; extensions png, jpg, jpeg, bmp, webp)");
}

void check_index(size_t index, size_t size) {
  if (index >= size) {
    throw Error("dataset index " + std::to_string(index) + " out of range (size " + std::to_string(size) + ")");
  }
}

// Splits an A|B side-by-side image into its halves.
std::pair<cv::Mat, cv::Mat> split_ab(const cv::Mat& ab, const fs::path& path) {
  if (ab.cols % 2 != 0) {
    throw Error("aligned image " + path.string() + " has odd width " + std::to_string(ab.cols) +
                " (expected A|B side by side, two halves of equal width)");
  }
  const int w = ab.cols / 2;
  return {ab(cv::Rect(0, 0, w, ab.rows)), ab(cv::Rect(w, 0, w, ab.rows))};
}

class AlignedDataset final : public Dataset {
 public:
  AlignedDataset(const fs::path& root, const std::string& split, DatasetOptions options)
      : options_(std::move(options)) {
    validate_options(options_);
    const fs::path dir = root / split;
    const std::string layout = "aligned layout " + root.string() + "/" + split + "/ with A|B side-by-side images";
    files_ = list_folder(dir, layout);
    if (options_.skip_bad_files) {
      files_ = filter_readable(files_, [](const fs::path& p) { split_ab(read_image_rgb(p), p); }, skipped_);
    }
    require_nonempty(files_, dir, layout, skipped_);
  }
  size_t size() const override { return files_.size(); }
  size_t skipped_files() const override { return skipped_; }

  Sample get(size_t index, uint64_t seed) const override {
    check_index(index, files_.size());
    const fs::path& path = files_[index];
    auto [a, b] = split_ab(read_image_rgb(path), path);
    if (options_.direction == "BtoA") std::swap(a, b);
    SampleRng rng(hash_combine(seed, index));
    const TransformParams params = draw_params(options_.transform, a.size(), rng);
    Sample s;
    s.a = apply_transform(options_.transform, params, a, path);
    s.b = apply_transform(options_.transform, params, b, path);
    s.a_path = s.b_path = path.string();
    return s;
  }

 private:
  DatasetOptions options_;
  std::vector<fs::path> files_;
  size_t skipped_ = 0;
};

class UnalignedDataset final : public Dataset {
 public:
  UnalignedDataset(const fs::path& root, const std::string& split, DatasetOptions options)
      : options_(std::move(options)) {
    validate_options(options_);
    const std::string layout = "unaligned layout " + root.string() + "/" + split + "A/ and " + root.string() + "/" +
                               split + "B/";
    const fs::path dir_a = root / (split + "A");
    const fs::path dir_b = root / (split + "B");
    files_a_ = list_folder(dir_a, layout);
    files_b_ = list_folder(dir_b, layout);
    if (options_.skip_bad_files) {
      const auto check = [](const fs::path& p) { read_image_rgb(p); };
      files_a_ = filter_readable(files_a_, check, skipped_);
      files_b_ = filter_readable(files_b_, check, skipped_);
    }
    require_nonempty(files_a_, dir_a, layout, skipped_);
    require_nonempty(files_b_, dir_b, layout, skipped_);
  }
  // As in the public code: an epoch covers the larger domain; the smaller one wraps around.
  size_t size() const override { return std::max(files_a_.size(), files_b_.size()); }
  size_t skipped_files() const override { return skipped_; }

  Sample get(size_t index, uint64_t seed) const override {
    check_index(index, size());
    SampleRng rng(hash_combine(seed, index));
    const fs::path& path_a = files_a_[index % files_a_.size()];
    const size_t b_index = options_.serial_batches ? index % files_b_.size() : rng.below(files_b_.size());
    const fs::path& path_b = files_b_[b_index];
    const cv::Mat a = read_image_rgb(path_a);
    const cv::Mat b = read_image_rgb(path_b);
    // Each domain gets its own crop and flip, as in the public unaligned dataset.
    const TransformParams params_a = draw_params(options_.transform, a.size(), rng);
    const TransformParams params_b = draw_params(options_.transform, b.size(), rng);
    Sample s;
    s.a = apply_transform(options_.transform, params_a, a, path_a);
    s.b = apply_transform(options_.transform, params_b, b, path_b);
    s.a_path = path_a.string();
    s.b_path = path_b.string();
    return s;
  }

 private:
  DatasetOptions options_;
  std::vector<fs::path> files_a_;
  std::vector<fs::path> files_b_;
  size_t skipped_ = 0;
};

class SingleDataset final : public Dataset {
 public:
  SingleDataset(const fs::path& dir, DatasetOptions options) : options_(std::move(options)) {
    validate_options(options_);
    const std::string layout = "a folder of images " + dir.string() + "/";
    files_ = list_folder(dir, layout);
    if (options_.skip_bad_files) {
      files_ = filter_readable(files_, [](const fs::path& p) { read_image_rgb(p); }, skipped_);
    }
    require_nonempty(files_, dir, layout, skipped_);
  }
  size_t size() const override { return files_.size(); }
  size_t skipped_files() const override { return skipped_; }

  Sample get(size_t index, uint64_t seed) const override {
    check_index(index, files_.size());
    const fs::path& path = files_[index];
    const cv::Mat a = read_image_rgb(path);
    SampleRng rng(hash_combine(seed, index));
    Sample s;
    s.a = apply_transform(options_.transform, draw_params(options_.transform, a.size(), rng), a, path);
    s.a_path = path.string();
    return s;
  }

 private:
  DatasetOptions options_;
  std::vector<fs::path> files_;
  size_t skipped_ = 0;
};

}  // namespace

std::shared_ptr<Dataset> open_aligned(const fs::path& root, const std::string& split, const DatasetOptions& options) {
  return std::make_shared<AlignedDataset>(root, split, options);
}

std::shared_ptr<Dataset> open_unaligned(const fs::path& root, const std::string& split,
                                        const DatasetOptions& options) {
  return std::make_shared<UnalignedDataset>(root, split, options);
}

std::shared_ptr<Dataset> open_single(const fs::path& dir, const DatasetOptions& options) {
  return std::make_shared<SingleDataset>(dir, options);
}

}  // namespace ganlite::data
