// torch.nn.utils.spectral_norm on a Conv2d (Miyato et al. 2018), shared by SPADE's multi-scale
// discriminator and, with ArchConfig::spectral_norm, the SPADE generator's block convs (NVlabs/SPADE
// norm_G "spectralspadesyncbatch3x3").
#pragma once
#include <torch/nn/module.h>
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ganlite::nn {

// The parameter `weight_orig`, buffers `weight_u` [out] and `weight_v` [in * k * k] (and `bias`
// when asked for), as PyTorch names them. In training mode each forward runs one power iteration
// (v = normalize(W^T u), u = normalize(W v), eps 1e-12) and updates the buffers; the conv uses
// weight_orig / (u . W v) with u, v held constant for the gradient. Eval mode reuses u, v.
class SpectralNormConv2dImpl : public torch::nn::Module {
 public:
  SpectralNormConv2dImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding,
                         bool bias = false);
  torch::Tensor forward(torch::Tensor x);
  // weight_orig / sigma with the current u, v (no power iteration).
  torch::Tensor normalized_weight() const;

  torch::Tensor weight_orig, weight_u, weight_v, bias;  // bias undefined when not asked for
  int64_t stride = 1, padding = 0;
};
TORCH_MODULE(SpectralNormConv2d);

// Folds every NAME.weight_orig with its NAME.weight_u / NAME.weight_v into NAME.weight =
// weight_orig / (u . W v) (what eval mode uses; computed in fp64, stored in weight_orig's dtype);
// other tensors pass unchanged, in order. Returns how many weights were folded. Throws Error
// when a weight_orig comes without its u, v or their shapes do not match.
size_t fold_spectral_norm(std::vector<std::pair<std::string, torch::Tensor>>& tensors);

}  // namespace ganlite::nn
