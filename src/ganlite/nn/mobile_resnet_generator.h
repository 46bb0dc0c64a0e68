// gan-compression's MobileResnetGenerator (methods.md 1.2): the ResNet generator with each block's
// 3x3 convs replaced by separable convs; same keys as the public code, per-layer widths supported.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>

#include <cstddef>
#include <string>

#include "ganlite/nn/resnet_generator.h"

namespace ganlite::nn {

// conv_block = [pad, SeparableConv2d dim->mid, norm, ReLU, Dropout, pad, SeparableConv2d mid->dim,
// norm] (Dropout always present, as in gan-compression), output x + conv_block(x).
class MobileResnetBlockImpl : public torch::nn::Module {
 public:
  MobileResnetBlockImpl(int64_t dim, int64_t mid, const std::string& padding, const std::string& norm,
                        double dropout);
  torch::Tensor forward(torch::Tensor x);
  size_t first_norm_index() const { return first_norm_index_; }

  torch::nn::Sequential conv_block{nullptr};

 private:
  size_t first_norm_index_ = 0;
};
TORCH_MODULE(MobileResnetBlock);

class MobileResnetGeneratorImpl : public ResnetLikeGeneratorImpl {
 public:
  explicit MobileResnetGeneratorImpl(ArchConfig config);
};
TORCH_MODULE(MobileResnetGenerator);

}  // namespace ganlite::nn
