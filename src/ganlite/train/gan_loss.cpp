#include "ganlite/train/gan_loss.h"

#include <torch/torch.h>

#include <algorithm>

#include "ganlite/train/mixed_precision.h"
#include "ganlite/util/error.h"

namespace ganlite::train {

const std::vector<std::string>& valid_gan_modes() {
  static const std::vector<std::string> modes{"lsgan", "vanilla", "hinge"};
  return modes;
}

GanLoss::GanLoss(std::string mode) : mode_(std::move(mode)) {
  const auto& valid = valid_gan_modes();
  if (std::find(valid.begin(), valid.end(), mode_) == valid.end()) throw_bad_choice("gan_mode", mode_, valid);
}

torch::Tensor GanLoss::operator()(const torch::Tensor& logits, bool target_is_real, bool for_discriminator) const {
  const torch::Tensor prediction = to_fp32(logits);  // a bf16 / fp16 D's output: the loss in fp32
  if (mode_ == "lsgan" || mode_ == "vanilla") {
    const auto target = torch::full_like(prediction, target_is_real ? 1.0 : 0.0);
    return mode_ == "lsgan" ? torch::mse_loss(prediction, target)
                            : torch::binary_cross_entropy_with_logits(prediction, target);
  }
  // hinge
  if (!for_discriminator) {
    require(target_is_real, "the hinge generator loss only targets real");
    return -prediction.mean();
  }
  return target_is_real ? torch::relu(1.0 - prediction).mean() : torch::relu(1.0 + prediction).mean();
}

torch::Tensor GanLoss::operator()(const nn::DiscriminatorOutput& output, bool target_is_real,
                                  bool for_discriminator) const {
  const auto& scales = output.scales;
  if (scales.empty()) throw Error("a discriminator returned no scale to compute the GAN loss on");
  // One scale is returned as it is, so single-scale losses are exactly the prediction map's loss.
  torch::Tensor total = (*this)(scales.front().logits, target_is_real, for_discriminator);
  for (size_t i = 1; i < scales.size(); ++i) {
    total = total + (*this)(scales[i].logits, target_is_real, for_discriminator);
  }
  return scales.size() == 1 ? total : total / static_cast<double>(scales.size());
}

}  // namespace ganlite::train
