// Building blocks shared by the generators and discriminators: the norm and padding factories
// and the `use_bias` rule of the public code (pytorch-CycleGAN-and-pix2pix, gan-compression,
// CAT), and gan-compression's SeparableConv2d.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/types.h>

#include <cstdint>
#include <string>

#include "ganlite/nn/forward_trace.h"

namespace ganlite::nn {

// A Sequential that can sit inside another Sequential (LibTorch's AnyModule cannot hold a plain
// Sequential, whose forward is a template). Same keys; forward runs through run_sequential.
class NestedSequentialImpl : public torch::nn::SequentialImpl {
 public:
  using SequentialImpl::SequentialImpl;
  torch::Tensor forward(torch::Tensor x) { return run_sequential(*this, std::move(x)); }
};
TORCH_MODULE(NestedSequential);

// Throws UsageError naming the valid values unless `norm` / `padding` is one of them.
void check_norm(const std::string& norm);
void check_padding(const std::string& padding);

// instance        = InstanceNorm2d(affine=false, track_running_stats=false)
// instance_affine = InstanceNorm2d(affine=true,  track_running_stats=false)   (CAT's --norm_affine)
// batch           = BatchNorm2d(affine=true, track_running_stats=true)
// none            = Identity
torch::nn::AnyModule make_norm(const std::string& norm, int64_t channels);

// True when the norm has a learnable scale (instance_affine, batch).
bool norm_is_affine(const std::string& norm);

// The public code's rule: convs followed by a norm carry a bias only when that norm is an
// InstanceNorm (`use_bias = norm_layer.func == nn.InstanceNorm2d`). With norm 'none' the norm
// factory is a plain function, so the rule yields false: no bias either.
bool norm_uses_bias(const std::string& norm);

// Padding as the ResNet-family blocks do it: a ReflectionPad2d / ReplicationPad2d layer in front
// of the conv, or, for 'zero', no layer and `conv_padding` = amount on the conv itself.
struct PaddingSpec {
  bool has_layer = false;
  torch::nn::AnyModule layer;
  int64_t conv_padding = 0;
};
PaddingSpec block_padding(const std::string& padding, int64_t amount);

// Padding always as a layer (CAT's inception blocks: 'zero' is ConstantPad2d(amount, 0)).
torch::nn::AnyModule padding_layer(const std::string& padding, int64_t amount);

torch::nn::Conv2d make_conv(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t padding = 0,
                            bool bias = true, int64_t groups = 1);

// gan-compression's mobile_modules.SeparableConv2d: Sequential `conv` = [depthwise conv (groups =
// in), non-affine InstanceNorm, pointwise 1x1 conv], both convs with bias.
class SeparableConv2dImpl : public torch::nn::Module {
 public:
  SeparableConv2dImpl(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride = 1,
                      int64_t padding = 0);
  torch::Tensor forward(torch::Tensor x);

  torch::nn::Sequential conv{nullptr};
};
TORCH_MODULE(SeparableConv2d);

}  // namespace ganlite::nn
