// Folding an eval-mode normalisation into the convolution before it: the one implementation,
// used by the lowering (nn/lowering.cpp, nn/pass_fold_norms.cpp) that both the fast inference
// path and the ONNX exporter consume.
#pragma once
#include <torch/nn/module.h>
#include <torch/types.h>

#include <optional>

namespace ganlite::nn {

// y = x * scale + shift per channel, float64 [C].
struct ChannelAffine {
  torch::Tensor scale, shift;
};

// A BatchNorm2d, or an InstanceNorm2d tracking running statistics, in eval mode as a per-channel
// affine map: scale = gamma / sqrt(running_var + eps), shift = beta - running_mean * scale.
// nullopt for any other module and for a norm without running statistics.
std::optional<ChannelAffine> running_norm_affine(const torch::nn::Module& norm);

// A convolution's weight and bias, float64; `bias` always defined after folding.
struct ConvWeights {
  torch::Tensor weight, bias;
};

// The conv (weight, optional bias) followed by `affine` as one conv: the weight scaled along its
// output-channel dimension `out_dim` (0 for Conv2d, 1 for an ungrouped ConvTranspose2d),
// bias * scale + shift (shift alone without a bias). Exact in real arithmetic; computed in float64.
ConvWeights fold_affine_into_conv(const torch::Tensor& weight, const torch::Tensor& bias, const ChannelAffine& affine,
                                  int64_t out_dim);

}  // namespace ganlite::nn
