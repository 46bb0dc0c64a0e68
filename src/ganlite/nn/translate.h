// Running a generator on images of any size: pad (reflect) to the multiple the architecture
// needs (nn::size_multiple), translate, crop back, so outputs keep the input's size.
#pragma once
#include <functional>
#include <torch/types.h>

#include "ganlite/nn/generator.h"

namespace ganlite::nn {

// images: [N, 3, H, W] in [-1, 1] on the generator's device. Runs without gradients in the
// generator's current mode; returns [N, output_nc, H, W].
torch::Tensor translate_padded(GeneratorImpl& generator, const torch::Tensor& images);

// The same padding around any forward function (an ONNX runner, an optimised inference path).
torch::Tensor translate_padded(const std::function<torch::Tensor(const torch::Tensor&)>& forward,
                               const torch::Tensor& images, int64_t multiple);

}  // namespace ganlite::nn
