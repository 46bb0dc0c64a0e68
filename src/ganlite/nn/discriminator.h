// The discriminators of pytorch-CycleGAN-and-pix2pix / gan-compression (methods.md 1.4):
// PatchGAN `NLayerDiscriminator` (keys model.N) and the 1x1 `PixelDiscriminator` (keys net.N).
// A discriminator returns, per scale, its prediction map and the activations before it
// (DiscriminatorOutput): PatchGAN and pixel D have one scale; pix2pixHD / SPADE's multi-scale D
// judge the image at several resolutions. Feature-level losses (DCD) read the activations.
// The kinds (`--netD basic|n_layers|pixel`) are entries of nn/discriminator_registry.h.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>

#include <memory>
#include <string>
#include <cstdint>
#include <vector>

namespace ganlite::nn {

struct DiscriminatorConfig {
  std::string arch = "n_layers";  // a registered kind (discriminator_kind_names()): basic | n_layers | pixel
  int input_nc = 3;               // 6 for a conditional (pix2pix) D: input and output concatenated
  int ndf = 64;
  int n_layers = 3;               // n_layers only (basic fixes it to 3)
  std::string norm = "batch";     // instance | instance_affine | batch | none

  // Throws UsageError naming the bad field and, for choices, the valid values.
  void validate() const;
  // The kind's fixed settings applied (basic: n_layers 3). Throws UsageError for an unknown kind.
  DiscriminatorConfig resolved() const;
  // The 4-d (conv) weights the module will have, computed without building it: configs are
  // checked against nn::kMaxConvWeights before anything is allocated.
  int64_t conv_weight_count() const;
};

// One scale's judgement.
struct DiscriminatorScale {
  torch::Tensor logits;                 // the prediction map (no sigmoid)
  // The activation after each LeakyReLU, in order. back() is the D "cut before its last conv"
  // (DCD's D', methods.md 3.4).
  std::vector<torch::Tensor> features;
};

// What a discriminator returns: one entry per scale, the input's own resolution first.
struct DiscriminatorOutput {
  std::vector<DiscriminatorScale> scales;
};

// The Sequential holding every layer of a single-Sequential D, under its registered name
// ("model", "net"): what discriminator pruning slices.
struct DiscriminatorLayers {
  torch::nn::SequentialImpl* seq = nullptr;
  std::string name;
};

class DiscriminatorImpl : public torch::nn::Module {
 public:
  ~DiscriminatorImpl() override = default;
  virtual DiscriminatorOutput forward(torch::Tensor x) = 0;
  // seq == nullptr for a D of another shape (several Sequentials: a multi-scale D).
  virtual DiscriminatorLayers layers() { return {}; }
};
using Discriminator = std::shared_ptr<DiscriminatorImpl>;

// model = [conv 4x4 s2, LeakyReLU 0.2] + (n_layers - 1) x [conv 4x4 s2, norm, LeakyReLU] +
// [conv 4x4 s1 to min(2^n, 8) ndf, norm, LeakyReLU] + [conv 4x4 s1 to 1 channel].
class NLayerDiscriminatorImpl : public DiscriminatorImpl {
 public:
  explicit NLayerDiscriminatorImpl(const DiscriminatorConfig& config);
  DiscriminatorOutput forward(torch::Tensor x) override;
  DiscriminatorLayers layers() override { return {model.get(), "model"}; }

  torch::nn::Sequential model{nullptr};
};
TORCH_MODULE(NLayerDiscriminator);

// net = [conv 1x1 -> ndf, LeakyReLU, conv 1x1 -> 2ndf, norm, LeakyReLU, conv 1x1 -> 1].
class PixelDiscriminatorImpl : public DiscriminatorImpl {
 public:
  explicit PixelDiscriminatorImpl(const DiscriminatorConfig& config);
  DiscriminatorOutput forward(torch::Tensor x) override;
  DiscriminatorLayers layers() override { return {net.get(), "net"}; }

  torch::nn::Sequential net{nullptr};
};
TORCH_MODULE(PixelDiscriminator);

// Builds and initialises (normal, 0.02) the discriminator `config` describes (validated first).
Discriminator make_discriminator(const DiscriminatorConfig& config);

}  // namespace ganlite::nn
