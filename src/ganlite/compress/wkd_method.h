// WKD: distilling the wavelet detail bands of the teacher's output (methods.md 3.5) as a
// registered distillation method.
#pragma once
#include <string>
#include <utility>

#include "ganlite/compress/distill_loss.h"

namespace ganlite::compress {

inline constexpr const char* kWkdMethod = "wkd";
// Haar levels of WKD: each halves the image side, so 13 reach 1 pixel at 8192 (the largest
// image size, train/train_config.h).
inline constexpr int kMaxWkdLevels = 13;

// wavelet_detail_loss(S(A), T(A)) over the configured levels and distance.
class WkdTermImpl : public DistillTerm {
 public:
  WkdTermImpl(int levels, std::string distance) : levels_(levels), distance_(std::move(distance)) {}
  std::string method() const override { return kWkdMethod; }
  torch::Tensor loss(const DistillInputs& inputs) override;

 private:
  int levels_;
  std::string distance_;
};
TORCH_MODULE(WkdTerm);

}  // namespace ganlite::compress
