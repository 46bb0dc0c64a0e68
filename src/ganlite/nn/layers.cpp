#include "ganlite/nn/layers.h"

#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/instancenorm.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/padding.h>

#include "ganlite/nn/arch_config.h"
#include "ganlite/nn/forward_trace.h"
#include "ganlite/util/error.h"

namespace ganlite::nn {

void check_norm(const std::string& norm) {
  for (const auto& v : valid_norms()) {
    if (v == norm) return;
  }
  throw_bad_choice("norm", norm, valid_norms());
}

void check_padding(const std::string& padding) {
  for (const auto& v : valid_paddings()) {
    if (v == padding) return;
  }
  throw_bad_choice("padding", padding, valid_paddings());
}

torch::nn::AnyModule make_norm(const std::string& norm, int64_t channels) {
  check_norm(norm);
  if (norm == "instance") {
    return torch::nn::AnyModule(torch::nn::InstanceNorm2d(
        torch::nn::InstanceNorm2dOptions(channels).affine(false).track_running_stats(false)));
  }
  if (norm == "instance_affine") {
    return torch::nn::AnyModule(torch::nn::InstanceNorm2d(
        torch::nn::InstanceNorm2dOptions(channels).affine(true).track_running_stats(false)));
  }
  if (norm == "batch") {
    return torch::nn::AnyModule(
        torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(channels).affine(true).track_running_stats(true)));
  }
  return torch::nn::AnyModule(torch::nn::Identity());
}

bool norm_is_affine(const std::string& norm) {
  check_norm(norm);
  return norm == "instance_affine" || norm == "batch";
}

bool norm_uses_bias(const std::string& norm) {
  check_norm(norm);
  return norm == "instance" || norm == "instance_affine";
}

PaddingSpec block_padding(const std::string& padding, int64_t amount) {
  check_padding(padding);
  PaddingSpec spec;
  if (padding == "zero") {
    spec.conv_padding = amount;
  } else {
    spec.has_layer = true;
    spec.layer = padding_layer(padding, amount);
  }
  return spec;
}

torch::nn::AnyModule padding_layer(const std::string& padding, int64_t amount) {
  check_padding(padding);
  if (padding == "reflect") return torch::nn::AnyModule(torch::nn::ReflectionPad2d(amount));
  if (padding == "replicate") return torch::nn::AnyModule(torch::nn::ReplicationPad2d(amount));
  return torch::nn::AnyModule(torch::nn::ConstantPad2d(torch::nn::ConstantPad2dOptions(amount, 0.0)));
}

torch::nn::Conv2d make_conv(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t padding, bool bias,
                            int64_t groups) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(bias).groups(groups));
}

SeparableConv2dImpl::SeparableConv2dImpl(int64_t in_channels, int64_t out_channels, int64_t kernel_size,
                                         int64_t stride, int64_t padding) {
  conv = register_module(
      "conv", torch::nn::Sequential(make_conv(in_channels, in_channels, kernel_size, stride, padding, true, in_channels),
                                    make_norm("instance", in_channels),
                                    make_conv(in_channels, out_channels, 1, 1, 0, true)));
}

torch::Tensor SeparableConv2dImpl::forward(torch::Tensor x) { return run_sequential(*conv, std::move(x)); }

}  // namespace ganlite::nn
