#include "ganlite/nn/mobile_resnet_generator.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/dropout.h>

#include "ganlite/nn/forward_trace.h"
#include "ganlite/nn/layers.h"

namespace ganlite::nn {

MobileResnetBlockImpl::MobileResnetBlockImpl(int64_t dim, int64_t mid, const std::string& padding,
                                             const std::string& norm, double dropout) {
  torch::nn::Sequential seq;
  auto pad = block_padding(padding, 1);
  if (pad.has_layer) seq->push_back(pad.layer);
  seq->push_back(SeparableConv2d(dim, mid, 3, 1, pad.conv_padding));
  first_norm_index_ = seq->size();
  seq->push_back(make_norm(norm, mid));
  seq->push_back(torch::nn::ReLU());
  seq->push_back(torch::nn::Dropout(dropout));
  pad = block_padding(padding, 1);
  if (pad.has_layer) seq->push_back(pad.layer);
  seq->push_back(SeparableConv2d(mid, dim, 3, 1, pad.conv_padding));
  seq->push_back(make_norm(norm, dim));
  conv_block = register_module("conv_block", seq);
}

torch::Tensor MobileResnetBlockImpl::forward(torch::Tensor x) { return x + run_sequential(*conv_block, x); }

MobileResnetGeneratorImpl::MobileResnetGeneratorImpl(ArchConfig config)
    : ResnetLikeGeneratorImpl(std::move(config), "mobile_resnet",
                              [](const ArchConfig& c, int64_t dim, int64_t mid, size_t* first_norm) {
                                MobileResnetBlock block(dim, mid, c.padding, c.norm, c.dropout);
                                *first_norm = block->first_norm_index();
                                return torch::nn::AnyModule(block);
                              }) {}

}  // namespace ganlite::nn

namespace ganlite::nn {

GeneratorFamily mobile_resnet_generator_family() {
  return resnet_like_generator_family(
      "mobile_resnet", "gan-compression's MobileResnetGenerator: separable convs in the blocks (methods.md 1.2)", true,
      [](const ArchConfig& c) -> Generator { return std::make_shared<MobileResnetGeneratorImpl>(c); },
      [](int64_t trunk, const std::vector<int>& mids) -> int64_t {
        const int64_t mid = mids.at(0);  // two separable convs: depthwise 3x3, then pointwise 1x1
        return trunk * 9 + trunk * mid + mid * 9 + mid * trunk;
      });
}

}  // namespace ganlite::nn
