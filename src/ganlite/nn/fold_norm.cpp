#include "ganlite/nn/fold_norm.h"

#include <torch/torch.h>

#include <vector>

namespace ganlite::nn {

namespace {

ChannelAffine affine_of(const torch::Tensor& mean, const torch::Tensor& var, const torch::Tensor& gamma,
                        const torch::Tensor& beta, double eps) {
  auto scale = at::rsqrt(var.detach().to(torch::kDouble) + eps);
  if (gamma.defined()) scale = scale * gamma.detach().to(torch::kDouble);
  auto shift = -mean.detach().to(torch::kDouble) * scale;
  if (beta.defined()) shift = shift + beta.detach().to(torch::kDouble);
  return {scale, shift};
}

}  // namespace

std::optional<ChannelAffine> running_norm_affine(const torch::nn::Module& norm) {
  if (const auto* bn = dynamic_cast<const torch::nn::BatchNorm2dImpl*>(&norm)) {
    if (!bn->options.track_running_stats() || !bn->running_mean.defined()) return std::nullopt;
    return affine_of(bn->running_mean, bn->running_var, bn->weight, bn->bias, bn->options.eps());
  }
  if (const auto* in = dynamic_cast<const torch::nn::InstanceNorm2dImpl*>(&norm)) {
    if (!in->options.track_running_stats() || !in->running_mean.defined()) return std::nullopt;
    return affine_of(in->running_mean, in->running_var, in->weight, in->bias, in->options.eps());
  }
  return std::nullopt;
}

ConvWeights fold_affine_into_conv(const torch::Tensor& weight, const torch::Tensor& bias, const ChannelAffine& affine,
                                  int64_t out_dim) {
  std::vector<int64_t> shape(static_cast<size_t>(weight.dim()), 1);
  shape.at(static_cast<size_t>(out_dim)) = -1;
  ConvWeights out;
  out.weight = weight.detach().to(torch::kDouble) * affine.scale.view(shape);
  out.bias = (bias.defined() ? bias.detach().to(torch::kDouble) * affine.scale : torch::zeros_like(affine.scale)) +
             affine.shift;
  return out;
}

}  // namespace ganlite::nn
