// The discriminators of pytorch-CycleGAN-and-pix2pix / gan-compression (methods.md 1.4):
// PatchGAN `NLayerDiscriminator` (keys model.N) and the 1x1 `PixelDiscriminator` (keys net.N).
// Both expose their intermediate activations for feature-level losses (DCD).
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>

#include <memory>
#include <string>
#include <cstdint>
#include <vector>

namespace ganlite::nn {

struct DiscriminatorConfig {
  std::string arch = "n_layers";  // n_layers | pixel
  int input_nc = 3;               // 6 for a conditional (pix2pix) D: input and output concatenated
  int ndf = 64;
  int n_layers = 3;               // n_layers only
  std::string norm = "batch";     // instance | instance_affine | batch | none

  // Throws UsageError naming the bad field and, for choices, the valid values.
  void validate() const;
  // The 4-d (conv) weights the module will have, computed without building it: configs are
  // checked against nn::kMaxConvWeights before anything is allocated.
  int64_t conv_weight_count() const;
};

const std::vector<std::string>& valid_discriminator_archs();

class DiscriminatorImpl : public torch::nn::Module {
 public:
  ~DiscriminatorImpl() override = default;
  // The prediction map (logits, no sigmoid).
  virtual torch::Tensor forward(torch::Tensor x) = 0;
  // The activation after each LeakyReLU, in order, then the prediction map.
  virtual std::vector<torch::Tensor> forward_features(torch::Tensor x) = 0;
  // The features "cut before the last conv" (DCD's D'): the output of the last LeakyReLU.
  virtual torch::Tensor forward_cut(torch::Tensor x) = 0;
};
using Discriminator = std::shared_ptr<DiscriminatorImpl>;

// model = [conv 4x4 s2, LeakyReLU 0.2] + (n_layers - 1) x [conv 4x4 s2, norm, LeakyReLU] +
// [conv 4x4 s1 to min(2^n, 8) ndf, norm, LeakyReLU] + [conv 4x4 s1 to 1 channel].
class NLayerDiscriminatorImpl : public DiscriminatorImpl {
 public:
  explicit NLayerDiscriminatorImpl(const DiscriminatorConfig& config);
  torch::Tensor forward(torch::Tensor x) override;
  std::vector<torch::Tensor> forward_features(torch::Tensor x) override;
  torch::Tensor forward_cut(torch::Tensor x) override;

  torch::nn::Sequential model{nullptr};
};
TORCH_MODULE(NLayerDiscriminator);

// net = [conv 1x1 -> ndf, LeakyReLU, conv 1x1 -> 2ndf, norm, LeakyReLU, conv 1x1 -> 1].
class PixelDiscriminatorImpl : public DiscriminatorImpl {
 public:
  explicit PixelDiscriminatorImpl(const DiscriminatorConfig& config);
  torch::Tensor forward(torch::Tensor x) override;
  std::vector<torch::Tensor> forward_features(torch::Tensor x) override;
  torch::Tensor forward_cut(torch::Tensor x) override;

  torch::nn::Sequential net{nullptr};
};
TORCH_MODULE(PixelDiscriminator);

// Builds and initialises (normal, 0.02) the discriminator `config` describes (validated first).
Discriminator make_discriminator(const DiscriminatorConfig& config);

}  // namespace ganlite::nn
