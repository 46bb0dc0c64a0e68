// The ResNet generator of pytorch-CycleGAN-and-pix2pix (methods.md 1.1), layer for layer with the
// same state-dict keys, plus per-layer widths (ArchConfig::widths) so a pruned student is the same
// class. ResnetLikeGeneratorImpl holds what the mobile variant shares with it.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/container/sequential.h>

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "ganlite/nn/generator.h"
#include "ganlite/nn/generator_family.h"

namespace ganlite::nn {

// conv_block = [pad, conv dim->mid, norm, ReLU, (Dropout if dropout > 0), pad, conv mid->dim, norm]
// ('zero' padding drops the pad layers and pads in the convs), output x + conv_block(x).
class ResnetBlockImpl : public torch::nn::Module {
 public:
  ResnetBlockImpl(int64_t dim, int64_t mid, const std::string& padding, const std::string& norm, double dropout,
                  bool use_bias);
  torch::Tensor forward(torch::Tensor x);
  // Index in conv_block of the norm after the first conv (the one pruning scores).
  size_t first_norm_index() const { return first_norm_index_; }

  torch::nn::Sequential conv_block{nullptr};

 private:
  size_t first_norm_index_ = 0;
};
TORCH_MODULE(ResnetBlock);

// One Sequential `model`: [ReflectionPad 3, conv 7x7, norm, ReLU] (0-3), two down stages
// [conv 3x3 s2, norm, ReLU] (4-9), the blocks (10 ...), two up stages [conv-transpose, norm, ReLU],
// ReflectionPad 3, conv 7x7 (with bias), Tanh. Taps: model.9 and blocks n/3, 2n/3, n.
class ResnetLikeGeneratorImpl : public GeneratorImpl {
 public:
  static constexpr size_t kBlocksBegin = 10;

  torch::Tensor forward(torch::Tensor x) override;
  GeneratorOutput forward_with_taps(torch::Tensor x) override;
  std::vector<std::string> tap_names() const override;
  std::vector<ScoredNorm> scored_norms() const override;

  torch::nn::Sequential model{nullptr};

 protected:
  // Builds block `index` of trunk width `dim` and middle width `mid`; sets `first_norm_index` to
  // the index of the block's first norm inside its `conv_block`.
  using BlockFactory = std::function<torch::nn::AnyModule(const ArchConfig& config, int64_t dim, int64_t mid,
                                                          size_t* first_norm_index)>;
  ResnetLikeGeneratorImpl(ArchConfig config, const std::string& expected_arch, const BlockFactory& make_block);

 private:
  std::vector<size_t> tap_ends() const;  // Sequential index after which each tap is taken, plus one

  std::vector<size_t> block_first_norm_;
};

// The family entry shared by resnet and mobile_resnet (generator_family.h): size multiple 4,
// widths {mid} per block, CAT pruning, import of the public code's `model.<i>` layout.
// `separable_blocks`: the blocks' convs are SeparableConv2d (gan-compression's mobile layout);
// `block_conv_weights`: one block's convolution weights (trunk width, {mid}).
GeneratorFamily resnet_like_generator_family(
    std::string name, std::string description, bool separable_blocks, std::function<Generator(const ArchConfig&)> build,
    std::function<int64_t(int64_t trunk, const std::vector<int>& mids)> block_conv_weights);

class ResnetGeneratorImpl : public ResnetLikeGeneratorImpl {
 public:
  explicit ResnetGeneratorImpl(ArchConfig config);
};
TORCH_MODULE(ResnetGenerator);

}  // namespace ganlite::nn
