// SPADE's multi-scale discriminator (NVlabs/SPADE models/networks/discriminator.py,
// MultiscaleDiscriminator with `num_D` 2 and NLayerDiscriminator with n_layers_D 4; methods.md 1.5):
// `discriminator_<i>` judges the input, then the input average-pooled (3x3, stride 2, padding 1,
// padding not counted) for the next scale. Each scale is
//   model0 = [conv 4x4 s2 p2 in -> ndf (bias), LeakyReLU 0.2]
//   model1, model2 = [[spectral-norm conv 4x4 s2 p2 (no bias), norm], LeakyReLU 0.2]
//   model3 = [[spectral-norm conv 4x4 s1 p2 (no bias), norm], LeakyReLU 0.2]
//   model4 = [conv 4x4 s1 p2 -> 1 (bias)]
// widths ndf, 2ndf, 4ndf, 8ndf capped at 512 (min(nf * 2, 512)); norm = --norm-D (SPADE's
// "spectralinstance": InstanceNorm without affine). Keys as there, with PyTorch's spectral_norm
// names: discriminator_0.model0.0.weight, discriminator_0.model1.0.0.weight_orig / weight_u /
// weight_v, discriminator_1.model4.0.bias. Features: the four LeakyReLU outputs of each scale
// (what SPADE's feature matching compares). Init: every conv N(0, 0.02), ganlite's default (SPADE
// draws xavier_normal with gain 0.02); --init-type re-draws the plain convs only. Not prunable by
// --prune-d-ratio (several Sequentials).
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "ganlite/nn/discriminator.h"
#include "ganlite/nn/spectral_norm.h"  // SpectralNormConv2d

namespace ganlite::nn {

inline constexpr int kMultiscaleNumD = 2;
inline constexpr int kMultiscaleLayers = 4;

class MultiscaleNLayerImpl : public torch::nn::Module {
 public:
  explicit MultiscaleNLayerImpl(const DiscriminatorConfig& config);
  DiscriminatorScale forward(torch::Tensor x);

  std::vector<torch::nn::Sequential> stages;  // model0 .. model4
};
TORCH_MODULE(MultiscaleNLayer);

class MultiscaleDiscriminatorImpl : public DiscriminatorImpl {
 public:
  explicit MultiscaleDiscriminatorImpl(const DiscriminatorConfig& config);
  DiscriminatorOutput forward(torch::Tensor x) override;

  std::vector<MultiscaleNLayer> scales;  // discriminator_0, discriminator_1
};

}  // namespace ganlite::nn
