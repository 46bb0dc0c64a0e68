// pytorch-CycleGAN-and-pix2pix's U-Net generator (unet_256: num_downs 8, unet_128: 7): nested
// UnetSkipConnectionBlocks, each holding a Sequential `model`, so keys read
// `model.model.1.model.3.model.1.weight` exactly as in the public code.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>

#include <memory>
#include <string>
#include <vector>

#include "ganlite/nn/generator.h"

namespace ganlite::nn {

// What a traced U-Net forward records: the bottleneck (the innermost down conv's output) and the
// output of every block whose level is wanted (level 0 = outermost).
struct UnetTrace {
  std::vector<bool> want_level;
  std::vector<torch::Tensor> outputs;  // indexed by level
  torch::Tensor bottleneck;
};

// outermost: [down conv, sub, ReLU, up conv-transpose (bias), Tanh], returns model(x)
// middle:    [LeakyReLU 0.2, down conv, norm, sub, ReLU, up conv-transpose, norm, (Dropout)]
// innermost: [LeakyReLU 0.2, down conv, ReLU, up conv-transpose, norm]
// middle and innermost return cat([LeakyReLU(x), model(x)]): the public code's LeakyReLU is
// in-place, so its skip connection carries the activated input; we reproduce that out of place.
class UnetSkipConnectionBlockImpl : public torch::nn::Module {
 public:
  enum class Kind { outermost, middle, innermost };
  UnetSkipConnectionBlockImpl(int64_t outer_nc, int64_t inner_nc, int64_t input_nc,
                              std::shared_ptr<UnetSkipConnectionBlockImpl> submodule, Kind kind, int level,
                              const std::string& norm, double dropout);
  torch::Tensor forward(torch::Tensor x) { return forward_traced(std::move(x), nullptr); }
  torch::Tensor forward_traced(torch::Tensor x, UnetTrace* trace);

  torch::nn::Sequential model{nullptr};

 private:
  Kind kind_;
  int level_;
  std::shared_ptr<UnetSkipConnectionBlockImpl> submodule_;
  size_t submodule_index_ = 0;
};
TORCH_MODULE(UnetSkipConnectionBlock);

// Taps (U-Net has no residual trunk, so these are our choice): the bottleneck (innermost down
// conv output, 8ngf at H/2^num_downs), then the decoder outputs (skip-concatenated) of the blocks
// at levels 3, 2 and 1: 8ngf at H/8, 4ngf at H/4, 2ngf at H/2 -- coarse to fine, like ResNet's taps.
// Input height and width must be multiples of 2^num_downs.
class UnetGeneratorImpl : public GeneratorImpl {
 public:
  explicit UnetGeneratorImpl(ArchConfig config);

  torch::Tensor forward(torch::Tensor x) override;
  GeneratorOutput forward_with_taps(torch::Tensor x) override;
  std::vector<std::string> tap_names() const override;
  // Throws UsageError: CAT pruning is defined for the residual generators only.
  std::vector<ScoredNorm> scored_norms() const override;

  UnetSkipConnectionBlock model{nullptr};

 private:
  void check_input(const torch::Tensor& x) const;
};
TORCH_MODULE(UnetGenerator);

}  // namespace ganlite::nn
