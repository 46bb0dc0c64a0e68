#include "ganlite/nn/unet_generator.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>

#include "ganlite/nn/forward_trace.h"
#include "ganlite/nn/generator_family.h"
#include "ganlite/nn/import_keys.h"
#include "ganlite/nn/layers.h"
#include "ganlite/util/error.h"
#include "ganlite/util/text.h"

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
  throw UsageError("CAT pruning is not defined for the " + config_.arch +
                   " architecture (valid: " + join_names(prunable_generator_families(), ", ") + ")");
}

}  // namespace ganlite::nn

namespace ganlite::nn {

namespace {

// (outer, inner, input) of each level from the innermost out; 4x4 down and up convs, the up conv
// taking the concatenated skip (2 inner) except at the innermost level.
int64_t unet_conv_weights(const ArchConfig& c) {
  const int64_t g = c.ngf;
  int64_t n = 8 * g * 8 * g * 16 + 8 * g * 8 * g * 16;                        // innermost
  n += int64_t{c.num_downs - 5} * (8 * g * 8 * g * 16 + 16 * g * 8 * g * 16);  // middle at 8 ngf
  n += 4 * g * 8 * g * 16 + 16 * g * 4 * g * 16;
  n += 2 * g * 4 * g * 16 + 8 * g * 2 * g * 16;
  n += g * 2 * g * 16 + 4 * g * g * 16;
  n += int64_t{c.input_nc} * g * 16 + 2 * g * c.output_nc * 16;  // outermost
  return n;
}

// pytorch-CycleGAN-and-pix2pix's nested `model.model.1.model.3...` layout: depth from the nesting,
// ngf and channels from the outermost convs; the keys are ours as they are.
ImportInference import_unet(const PublicStateDict& d, const ImportOptions& opts) {
  const std::string& arch = opts.arch;
  ImportInference out;
  ArchConfig& c = out.config;
  c.arch = arch;
  const torch::Tensor outer = d.need("model.model.0.weight", 4, "the outermost down conv", arch);
  c.input_nc = dim_int(outer.size(1));
  c.ngf = dim_int(outer.size(0));
  check_import_option(opts.ngf, c.ngf, "--ngf", "outermost conv width (model.model.0.weight)", d.source());
  c.output_nc = dim_int(d.need("model.model.3.weight", 4, "the outermost transposed conv", arch).size(1));
  std::string level = "model.model.1";
  int levels = 1;
  if (!d.has_prefix(level + ".model.")) d.need(level + ".model.1.weight", 4, "the second down conv", arch);
  // Descend while layer 3 is itself a skip block (the innermost block's layer 3 is its up conv).
  while (d.has_prefix(level + ".model.3.model.")) {
    level += ".model.3";
    ++levels;
  }
  c.num_downs = levels + 1;
  check_import_option(opts.num_downs, c.num_downs, "--num-downs", "U-Net depth (nested model.3 blocks, plus one)",
                      d.source());
  c.norm = opts.norm.value_or(infer_import_norm(d, "model.model.1.model.2", "model.model.1.model.1"));
  if (!opts.norm) out.notes.push_back("norm inferred from model.model.1.model.2: " + c.norm);
  c.dropout = opts.dropout.value_or(0.0);
  if (opts.padding) c.padding = *opts.padding;
  out.layout = "pytorch-CycleGAN-and-pix2pix UnetGenerator";
  out.remap_layers = [](const StateDictTensors&, KeyRemap&) {};
  return out;
}

}  // namespace

GeneratorFamily unet_generator_family() {
  GeneratorFamily f;
  f.name = "unet";
  f.description = "U-Net generator of pytorch-CycleGAN-and-pix2pix (unet_256: num_downs 8, unet_128: 7)";
  f.build = [](const ArchConfig& c) -> Generator { return std::make_shared<UnetGeneratorImpl>(c); };
  f.size_multiple = [](const ArchConfig& c) { return int64_t{1} << c.num_downs; };
  f.conv_weight_count = unet_conv_weights;
  f.uses_num_downs = true;
  f.widths_per_block = 0;  // no per-layer widths, hence no CAT pruning (no prune hooks)
  f.taps = "the bottleneck, then the decoder outputs at levels 3, 2 and 1";
  f.validate = [](const ArchConfig& c) {
    require(c.num_downs >= 5 && c.num_downs <= kMaxNumDowns, "unet num_downs must be in [5, " +
                                                                 std::to_string(kMaxNumDowns) + "], got " +
                                                                 std::to_string(c.num_downs));
  };
  // Its forward refuses other sizes, so profiling does too, naming the depth.
  f.check_profile_size = [](const ArchConfig& c, int64_t input_size) {
    const int64_t multiple = size_multiple(c);
    require(input_size % multiple == 0, "--input-size " + std::to_string(input_size) + " must be a multiple of " +
                                            std::to_string(multiple) + " for unet with --num-downs " +
                                            std::to_string(c.num_downs));
  };
  f.describe = [](const ArchConfig& c) {
    return c.arch + " ngf " + std::to_string(c.ngf) + ", " + std::to_string(c.num_downs) + " downs";
  };
  f.import_state_dict = import_unet;
  return f;
}

}  // namespace ganlite::nn
