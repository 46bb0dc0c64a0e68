// Running a generator on images of any size: pad (reflect) to the multiple the architecture
// needs, translate, crop back, so outputs keep the input's size.
#pragma once
#include <functional>
#include <torch/types.h>

#include "ganlite/nn/generator.h"

namespace ganlite::train {

// 4 for resnet / mobile_resnet / inception (two stride-2 stages), 2^num_downs for unet.
int64_t size_multiple(const nn::ArchConfig& config);

// images: [N, 3, H, W] in [-1, 1] on the generator's device. Runs without gradients in the
// generator's current mode; returns [N, output_nc, H, W].
torch::Tensor translate_padded(nn::GeneratorImpl& generator, const torch::Tensor& images);

// The same padding around any forward function (an ONNX runner, an optimised inference path).
torch::Tensor translate_padded(const std::function<torch::Tensor(const torch::Tensor&)>& forward,
                               const torch::Tensor& images, int64_t multiple);

}  // namespace ganlite::train
