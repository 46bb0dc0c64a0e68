// Datasets in the public pix2pix / CycleGAN folder layouts, with their transforms.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace ganlite::data {

struct TransformOptions {
  std::string preprocess = "resize_and_crop";  // resize_and_crop | scale_width | crop | none
  int load_size = 286;
  int crop_size = 256;
  bool flip = true;  // random horizontal flip (training); off for evaluation
};

struct DatasetOptions {
  TransformOptions transform;
  std::string direction = "AtoB";  // aligned only: AtoB | BtoA
  bool serial_batches = false;     // unaligned: pair A[i] with B[i] instead of a random B
  bool skip_bad_files = false;     // skip (and count) unreadable images instead of failing
};

// One example: tensors [3, H, W] in [-1, 1]. `b` is undefined for single-folder datasets.
struct Sample {
  torch::Tensor a;
  torch::Tensor b;
  std::string a_path;
  std::string b_path;
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual size_t size() const = 0;
  // Deterministic: the same (index, seed) gives the same crop, flip and pairing.
  virtual Sample get(size_t index, uint64_t seed) const = 0;
  // Files skipped because they could not be read (with skip_bad_files).
  virtual size_t skipped_files() const = 0;
};

// root/<split>/ holds A|B side-by-side images (split: "train", "test", "val").
std::shared_ptr<Dataset> open_aligned(const std::filesystem::path& root, const std::string& split,
                                      const DatasetOptions& options);
// root/<split>A/ and root/<split>B/.
std::shared_ptr<Dataset> open_unaligned(const std::filesystem::path& root, const std::string& split,
                                        const DatasetOptions& options);
// Every image in one folder (inference).
std::shared_ptr<Dataset> open_single(const std::filesystem::path& dir, const DatasetOptions& options);

}  // namespace ganlite::data
