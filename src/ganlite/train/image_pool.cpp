#include "ganlite/train/image_pool.h"

#include <torch/torch.h>

#include <sstream>

#include "ganlite/util/error.h"

namespace ganlite::train {

ImagePool::ImagePool(int pool_size, uint64_t seed) : pool_size_(pool_size), rng_(seed) {
  require(pool_size >= 0, "pool_size must be >= 0, got " + std::to_string(pool_size));
}

double ImagePool::uniform() {
  // 53 random bits: the same sequence on every platform (std::uniform_real_distribution is not).
  return static_cast<double>(rng_() >> 11) * (1.0 / 9007199254740992.0);
}

torch::Tensor ImagePool::query(const torch::Tensor& images) {
  const auto detached = images.detach();
  if (pool_size_ == 0) return detached;
  std::vector<torch::Tensor> out;
  out.reserve(static_cast<size_t>(detached.size(0)));
  for (int64_t i = 0; i < detached.size(0); ++i) {
    auto image = detached.slice(0, i, i + 1).clone();
    if (static_cast<int>(images_.size()) < pool_size_) {
      images_.push_back(image);
      out.push_back(image);
    } else if (uniform() > 0.5) {
      const auto id = static_cast<size_t>(rng_() % static_cast<uint64_t>(pool_size_));
      out.push_back(images_[id]);
      images_[id] = image;
    } else {
      out.push_back(image);
    }
  }
  return torch::cat(out, 0);
}

void ImagePool::save_state(const std::string& prefix, std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                           std::map<std::string, std::string>& metadata) const {
  std::ostringstream rng_text;
  rng_text << rng_;
  metadata[prefix + ".rng"] = rng_text.str();
  metadata[prefix + ".count"] = std::to_string(images_.size());
  for (size_t i = 0; i < images_.size(); ++i) tensors.emplace_back(prefix + "." + std::to_string(i), images_[i]);
}

void ImagePool::load_state(const std::string& prefix,
                           const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                           const std::map<std::string, std::string>& metadata, const torch::Device& device) {
  const auto rng_it = metadata.find(prefix + ".rng");
  const auto count_it = metadata.find(prefix + ".count");
  if (rng_it == metadata.end() || count_it == metadata.end()) {
    throw Error("image pool state '" + prefix + "' missing from the checkpoint");
  }
  std::istringstream rng_text(rng_it->second);
  std::mt19937_64 rng;
  rng_text >> rng;
  if (rng_text.fail()) throw Error("image pool state '" + prefix + ".rng' is malformed");
  size_t count = 0;
  try {
    count = std::stoul(count_it->second);
  } catch (const std::exception&) {
    throw Error("image pool state '" + prefix + ".count' is not a number: '" + count_it->second + "'");
  }
  if (count > static_cast<size_t>(pool_size_)) {
    throw Error("image pool '" + prefix + "' holds " + std::to_string(count) + " images but pool_size is " +
                std::to_string(pool_size_));
  }
  std::map<std::string, torch::Tensor> by_name(tensors.begin(), tensors.end());
  std::vector<torch::Tensor> images;
  for (size_t i = 0; i < count; ++i) {
    const auto it = by_name.find(prefix + "." + std::to_string(i));
    if (it == by_name.end()) throw Error("image pool tensor '" + prefix + "." + std::to_string(i) + "' missing");
    images.push_back(it->second.to(device).clone());
  }
  images_ = std::move(images);
  rng_ = rng;
}

}  // namespace ganlite::train
