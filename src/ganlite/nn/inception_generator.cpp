#include "ganlite/nn/inception_generator.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/padding.h>

#include "ganlite/nn/forward_trace.h"
#include "ganlite/nn/layers.h"
#include "ganlite/util/error.h"

namespace ganlite::nn {

namespace {
// CAT's ConvBNReLU: a Sequential [conv (no padding), norm, ReLU].
NestedSequential conv_norm_relu(int64_t in, int64_t out, int64_t kernel, int64_t groups, bool use_bias,
                                const std::string& norm) {
  return NestedSequential(make_conv(in, out, kernel, 1, 0, use_bias, groups), make_norm(norm, out),
                               torch::nn::ReLU());
}
}  // namespace

InvertedResidualChannelsImpl::InvertedResidualChannelsImpl(int64_t dim, const std::vector<int>& widths,
                                                           const std::string& padding, const std::string& norm,
                                                           double dropout, bool use_bias) {
  require(widths.size() == 6, "an inception block needs 6 widths (res_k1, res_k3, res_k5, dw_k1, dw_k3, dw_k5)");
  res_ops = register_module("res_ops", torch::nn::ModuleList());
  dw_ops = register_module("dw_ops", torch::nn::ModuleList());
  for (size_t j = 0; j < kInceptionKernels.size(); ++j) {
    const int64_t mid = widths[j];
    if (mid == 0) continue;
    const int64_t k = kInceptionKernels[j];
    torch::nn::Sequential branch(padding_layer(padding, (k - 1) / 2), conv_norm_relu(dim, mid, k, 1, use_bias, norm),
                                 torch::nn::Dropout(dropout), padding_layer(padding, (k - 1) / 2),
                                 make_conv(mid, dim, k, 1, 0, use_bias));
    res_ops->push_back(branch);
    res_branches_.push_back(branch);
    res_slots_.push_back(static_cast<int>(j));
  }
  for (size_t j = 0; j < kInceptionKernels.size(); ++j) {
    const int64_t mid = widths[3 + j];
    if (mid == 0) continue;
    const int64_t k = kInceptionKernels[j];
    torch::nn::Sequential branch(conv_norm_relu(dim, mid, 1, 1, use_bias, norm), padding_layer(padding, (k - 1) / 2),
                                 conv_norm_relu(mid, mid, k, mid, use_bias, norm), torch::nn::Dropout(dropout),
                                 make_conv(mid, dim, 1, 1, 0, use_bias));
    dw_ops->push_back(branch);
    dw_branches_.push_back(branch);
    dw_slots_.push_back(static_cast<int>(3 + j));
  }
  pw_bn = make_norm(norm, dim);
  register_module("pw_bn", pw_bn.ptr());
}

torch::Tensor InvertedResidualChannelsImpl::forward(torch::Tensor x) {
  if (res_branches_.empty() && dw_branches_.empty()) return x;
  // sum(res) + sum(dw) in the public code's order, so results match it bit for bit.
  auto branch_sum = [&x](std::vector<torch::nn::Sequential>& branches) {
    torch::Tensor sum;
    for (auto& branch : branches) {
      torch::Tensor y = run_sequential(*branch, x);
      sum = sum.defined() ? sum + y : y;
    }
    return sum;
  };
  torch::Tensor res = branch_sum(res_branches_);
  torch::Tensor dw = branch_sum(dw_branches_);
  torch::Tensor sum = !res.defined() ? dw : !dw.defined() ? res : res + dw;
  return x + report_layer(*pw_bn.ptr(), pw_bn.forward(sum));
}

std::vector<InvertedResidualChannelsImpl::BranchNorm> InvertedResidualChannelsImpl::first_norms() const {
  std::vector<BranchNorm> out;
  for (size_t j = 0; j < res_branches_.size(); ++j) {
    out.push_back({"res_ops." + std::to_string(j) + ".1.1", res_slots_[j], res_branches_[j]->named_modules("", false)["1.1"]});
  }
  for (size_t j = 0; j < dw_branches_.size(); ++j) {
    out.push_back({"dw_ops." + std::to_string(j) + ".0.1", dw_slots_[j], dw_branches_[j]->named_modules("", false)["0.1"]});
  }
  return out;
}

InceptionGeneratorImpl::InceptionGeneratorImpl(ArchConfig config) : GeneratorImpl(std::move(config)) {
  config_.validate();
  if (config_.arch != "inception") {
    throw UsageError("config arch '" + config_.arch + "' given to the inception generator");
  }
  const auto w = config_.with_resolved_widths().widths;
  const std::string& norm = config_.norm;
  const bool use_bias = norm_uses_bias(norm);

  torch::nn::Sequential down;
  down->push_back(torch::nn::ReflectionPad2d(3));
  down->push_back(make_conv(config_.input_nc, w.stem, 7, 1, 0, use_bias));
  down->push_back(make_norm(norm, w.stem));
  down->push_back(torch::nn::ReLU());
  const int64_t down_in[2] = {w.stem, w.down1};
  const int64_t down_out[2] = {w.down1, w.trunk};
  for (int i = 0; i < 2; ++i) {
    down->push_back(make_conv(down_in[i], down_out[i], 3, 2, 1, use_bias));
    down->push_back(make_norm(norm, down_out[i]));
    down->push_back(torch::nn::ReLU());
  }
  down_sampling = register_module("down_sampling", down);

  torch::nn::Sequential feats;
  for (const auto& block_widths : w.blocks) {
    InvertedResidualChannels block(w.trunk, block_widths, config_.padding, norm, config_.dropout, use_bias);
    feats->push_back(block);
    blocks_.push_back(block);
  }
  features = register_module("features", feats);

  torch::nn::Sequential up;
  const int64_t up_in[2] = {w.trunk, w.up1};
  const int64_t up_out[2] = {w.up1, w.up2};
  for (int i = 0; i < 2; ++i) {
    up->push_back(torch::nn::ConvTranspose2d(
        torch::nn::ConvTranspose2dOptions(up_in[i], up_out[i], 3).stride(2).padding(1).output_padding(1).bias(use_bias)));
    up->push_back(make_norm(norm, up_out[i]));
    up->push_back(torch::nn::ReLU());
  }
  up->push_back(torch::nn::ReflectionPad2d(3));
  up->push_back(make_conv(w.up2, config_.output_nc, 7, 1, 0, true));
  up->push_back(torch::nn::Tanh());
  up_sampling = register_module("up_sampling", up);
}

torch::Tensor InceptionGeneratorImpl::forward(torch::Tensor x) {
  x = run_sequential(*down_sampling, std::move(x));
  x = run_sequential(*features, std::move(x));
  return run_sequential(*up_sampling, std::move(x));
}

std::vector<size_t> InceptionGeneratorImpl::tap_ends() const {
  const size_t n = blocks_.size();
  return {n / 3, 2 * n / 3, n};
}

GeneratorOutput InceptionGeneratorImpl::forward_with_taps(torch::Tensor x) {
  GeneratorOutput out;
  x = run_sequential(*down_sampling, std::move(x));
  out.taps.push_back(x);
  size_t begin = 0;
  for (size_t end : tap_ends()) {
    x = run_sequential(*features, x, begin, end);
    out.taps.push_back(x);
    begin = end;
  }
  out.image = run_sequential(*up_sampling, x);
  return out;
}

std::vector<std::string> InceptionGeneratorImpl::tap_names() const {
  std::vector<std::string> names{"down_sampling.9"};
  // "After block 0" (fewer than three blocks) is the down-sampling output itself.
  for (size_t end : tap_ends()) names.push_back(end == 0 ? "down_sampling.9" : "features." + std::to_string(end - 1));
  return names;
}

std::vector<ScoredNorm> InceptionGeneratorImpl::scored_norms() const {
  std::vector<ScoredNorm> norms;
  norms.push_back({"down_sampling.2", NormRole::stem, -1, -1, down_sampling->ptr(2)});
  norms.push_back({"down_sampling.5", NormRole::down1, -1, -1, down_sampling->ptr(5)});
  norms.push_back({"down_sampling.8", NormRole::trunk, -1, -1, down_sampling->ptr(8)});
  for (size_t i = 0; i < blocks_.size(); ++i) {
    for (const auto& bn : blocks_[i]->first_norms()) {
      norms.push_back({"features." + std::to_string(i) + "." + bn.name, NormRole::block, static_cast<int>(i), bn.slot,
                       bn.module});
    }
  }
  norms.push_back({"up_sampling.1", NormRole::up1, -1, -1, up_sampling->ptr(1)});
  norms.push_back({"up_sampling.4", NormRole::up2, -1, -1, up_sampling->ptr(4)});
  return norms;
}

}  // namespace ganlite::nn
