// GAN objectives of the public code (models/modules/loss.py GANLoss): lsgan, vanilla, hinge.
// On a discriminator's output the loss is the mean over its scales, as pix2pixHD / SPADE's
// GANLoss does for a multi-scale D (one scale: the loss of its prediction map).
#pragma once
#include <torch/types.h>

#include <string>
#include <vector>

#include "ganlite/nn/discriminator.h"

namespace ganlite::train {

const std::vector<std::string>& valid_gan_modes();

class GanLoss {
 public:
  // Throws UsageError naming the valid modes.
  explicit GanLoss(std::string mode);

  // lsgan: MSE to 1 (real) / 0 (fake). vanilla: BCE with logits to 1 / 0.
  // hinge: discriminator relu(1 - pred) for real, relu(1 + pred) for fake; generator -mean(pred).
  // `for_discriminator` only matters for hinge; a generator loss always targets "real".
  torch::Tensor operator()(const torch::Tensor& prediction, bool target_is_real,
                           bool for_discriminator = true) const;
  // The mean over scales of the loss of each scale's logits. Throws Error for no scale.
  torch::Tensor operator()(const nn::DiscriminatorOutput& output, bool target_is_real,
                           bool for_discriminator = true) const;

  const std::string& mode() const { return mode_; }

 private:
  std::string mode_;
};

}  // namespace ganlite::train
