#include "ganlite/nn/unet_generator.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>

#include "ganlite/nn/forward_trace.h"
#include "ganlite/nn/layers.h"
#include "ganlite/util/error.h"

namespace ganlite::nn {

namespace {
constexpr int kTapLevels[3] = {3, 2, 1};

torch::nn::Conv2d down_conv(int64_t in, int64_t out, bool bias) { return make_conv(in, out, 4, 2, 1, bias); }

torch::nn::ConvTranspose2d up_conv(int64_t in, int64_t out, bool bias) {
  return torch::nn::ConvTranspose2d(torch::nn::ConvTranspose2dOptions(in, out, 4).stride(2).padding(1).bias(bias));
}

// State-dict prefix of the block at `level`: model, model.model.1, then .model.3 per level.
std::string block_prefix(int level) {
  if (level == 0) return "model";
  std::string name = "model.model.1";
  for (int i = 1; i < level; ++i) name += ".model.3";
  return name;
}
}  // namespace

UnetSkipConnectionBlockImpl::UnetSkipConnectionBlockImpl(int64_t outer_nc, int64_t inner_nc, int64_t input_nc,
                                                         std::shared_ptr<UnetSkipConnectionBlockImpl> submodule,
                                                         Kind kind, int level, const std::string& norm, double dropout)
    : kind_(kind), level_(level), submodule_(std::move(submodule)) {
  const bool use_bias = norm_uses_bias(norm);
  const auto leaky = torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(0.2));
  torch::nn::Sequential seq;
  if (kind == Kind::outermost) {
    seq->push_back(down_conv(input_nc, inner_nc, use_bias));
    submodule_index_ = seq->size();
    seq->push_back(submodule_);
    seq->push_back(torch::nn::ReLU());
    seq->push_back(up_conv(inner_nc * 2, outer_nc, true));
    seq->push_back(torch::nn::Tanh());
  } else if (kind == Kind::innermost) {
    seq->push_back(leaky);
    seq->push_back(down_conv(input_nc, inner_nc, use_bias));
    seq->push_back(torch::nn::ReLU());
    seq->push_back(up_conv(inner_nc, outer_nc, use_bias));
    seq->push_back(make_norm(norm, outer_nc));
  } else {
    seq->push_back(leaky);
    seq->push_back(down_conv(input_nc, inner_nc, use_bias));
    seq->push_back(make_norm(norm, inner_nc));
    submodule_index_ = seq->size();
    seq->push_back(submodule_);
    seq->push_back(torch::nn::ReLU());
    seq->push_back(up_conv(inner_nc * 2, outer_nc, use_bias));
    seq->push_back(make_norm(norm, outer_nc));
    if (dropout > 0) seq->push_back(torch::nn::Dropout(dropout));
  }
  model = register_module("model", seq);
}

torch::Tensor UnetSkipConnectionBlockImpl::forward_traced(torch::Tensor x, UnetTrace* trace) {
  size_t begin = 0;
  torch::Tensor skip;
  if (kind_ != Kind::outermost) {
    x = run_layer(*model->begin(), x);
    skip = x;
    begin = 1;
  }
  for (size_t i = begin; i < model->size(); ++i) {
    if (submodule_ && i == submodule_index_) {
      x = submodule_->forward_traced(x, trace);
    } else {
      x = run_layer(*(model->begin() + static_cast<std::ptrdiff_t>(i)), x);
    }
    if (trace != nullptr && kind_ == Kind::innermost && i == 1) trace->bottleneck = x;
  }
  torch::Tensor out = kind_ == Kind::outermost ? x : torch::cat({skip, x}, 1);
  if (trace != nullptr && static_cast<size_t>(level_) < trace->want_level.size() &&
      trace->want_level[static_cast<size_t>(level_)]) {
    trace->outputs[static_cast<size_t>(level_)] = out;
  }
  return out;
}

UnetGeneratorImpl::UnetGeneratorImpl(ArchConfig config) : GeneratorImpl(std::move(config)) {
  config_.validate();
  if (config_.arch != "unet") throw UsageError("config arch '" + config_.arch + "' given to the unet generator");
  using Kind = UnetSkipConnectionBlockImpl::Kind;
  const int64_t ngf = config_.ngf;
  const std::string& norm = config_.norm;
  int level = config_.num_downs - 1;
  auto block = std::make_shared<UnetSkipConnectionBlockImpl>(ngf * 8, ngf * 8, ngf * 8, nullptr, Kind::innermost,
                                                             level--, norm, 0.0);
  for (int i = 0; i < config_.num_downs - 5; ++i) {
    block = std::make_shared<UnetSkipConnectionBlockImpl>(ngf * 8, ngf * 8, ngf * 8, block, Kind::middle, level--,
                                                          norm, config_.dropout);
  }
  block = std::make_shared<UnetSkipConnectionBlockImpl>(ngf * 4, ngf * 8, ngf * 4, block, Kind::middle, level--, norm,
                                                        0.0);
  block = std::make_shared<UnetSkipConnectionBlockImpl>(ngf * 2, ngf * 4, ngf * 2, block, Kind::middle, level--, norm,
                                                        0.0);
  block = std::make_shared<UnetSkipConnectionBlockImpl>(ngf, ngf * 2, ngf, block, Kind::middle, level--, norm, 0.0);
  model = register_module("model", UnetSkipConnectionBlock(std::make_shared<UnetSkipConnectionBlockImpl>(
                                       config_.output_nc, ngf, config_.input_nc, block, Kind::outermost, level, norm,
                                       0.0)));
}

void UnetGeneratorImpl::check_input(const torch::Tensor& x) const {
  const int64_t multiple = size_multiple(config_);
  if (x.dim() != 4 || x.size(2) % multiple != 0 || x.size(3) % multiple != 0) {
    throw Error("unet with num_downs " + std::to_string(config_.num_downs) + " needs an NCHW input whose height and " +
                "width are multiples of " + std::to_string(multiple) + ", got shape " + c10::str(x.sizes()));
  }
}

torch::Tensor UnetGeneratorImpl::forward(torch::Tensor x) {
  check_input(x);
  return model->forward(std::move(x));
}

GeneratorOutput UnetGeneratorImpl::forward_with_taps(torch::Tensor x) {
  check_input(x);
  UnetTrace trace;
  trace.want_level.assign(static_cast<size_t>(config_.num_downs), false);
  trace.outputs.resize(static_cast<size_t>(config_.num_downs));
  for (int level : kTapLevels) trace.want_level[static_cast<size_t>(level)] = true;
  GeneratorOutput out;
  out.image = model->forward_traced(std::move(x), &trace);
  out.taps.push_back(trace.bottleneck);
  for (int level : kTapLevels) out.taps.push_back(trace.outputs[static_cast<size_t>(level)]);
  return out;
}

std::vector<std::string> UnetGeneratorImpl::tap_names() const {
  std::vector<std::string> names{block_prefix(config_.num_downs - 1) + ".model.1"};
  for (int level : kTapLevels) names.push_back(block_prefix(level));
  return names;
}

std::vector<ScoredNorm> UnetGeneratorImpl::scored_norms() const {
  throw UsageError("CAT pruning is not defined for the unet architecture (valid: resnet, mobile_resnet, inception)");
}

}  // namespace ganlite::nn
