// The history of generated images the CycleGAN discriminators see (public util/image_pool.py):
// until full, every image is stored and returned; then each image has a 50% chance to be swapped
// with a random stored one (the stored one is returned). Its RNG is its own and checkpointed, so
// a resumed run draws exactly what an uninterrupted one would.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace ganlite::train {

class ImagePool {
 public:
  ImagePool(int pool_size, uint64_t seed);

  // images: [N, C, H, W]; returns a tensor of the same shape (detached).
  torch::Tensor query(const torch::Tensor& images);

  int size() const { return static_cast<int>(images_.size()); }
  int capacity() const { return pool_size_; }

  // Contents as tensors "<prefix>.<i>" and the RNG state as metadata "<prefix>.rng".
  void save_state(const std::string& prefix, std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                  std::map<std::string, std::string>& metadata) const;
  // Restores contents onto `device`; throws Error when the state is missing or malformed.
  void load_state(const std::string& prefix, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                  const std::map<std::string, std::string>& metadata, const torch::Device& device);

 private:
  double uniform();  // [0, 1)

  int pool_size_;
  std::mt19937_64 rng_;
  std::vector<torch::Tensor> images_;  // each [1, C, H, W]
};

}  // namespace ganlite::train
