// Weight initialisation as the public code's `init_weights` (pytorch-CycleGAN-and-pix2pix).
#pragma once
#include <torch/nn/module.h>

#include <string>
#include <vector>

namespace ganlite::nn {

const std::vector<std::string>& valid_init_types();  // normal, xavier, kaiming, orthogonal

// Conv, conv-transpose and linear weights: normal N(0, gain) | xavier_normal(gain) |
// kaiming_normal(a=0, fan_in) | orthogonal(gain); their biases 0. BatchNorm2d: weight N(1, gain),
// bias 0. Other layers (InstanceNorm included) keep their defaults. Throws UsageError for an
// unknown type.
void init_weights(torch::nn::Module& module, const std::string& type = "normal", double gain = 0.02);

}  // namespace ganlite::nn
