#include "ganlite/nn/resnet_generator.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>

#include "ganlite/nn/forward_trace.h"
#include "ganlite/nn/layers.h"
#include "ganlite/util/error.h"

namespace ganlite::nn {

ResnetBlockImpl::ResnetBlockImpl(int64_t dim, int64_t mid, const std::string& padding, const std::string& norm,
                                 double dropout, bool use_bias) {
  torch::nn::Sequential seq;
  auto pad = block_padding(padding, 1);
  if (pad.has_layer) seq->push_back(pad.layer);
  seq->push_back(make_conv(dim, mid, 3, 1, pad.conv_padding, use_bias));
  first_norm_index_ = seq->size();
  seq->push_back(make_norm(norm, mid));
  seq->push_back(torch::nn::ReLU());
  // pytorch-CycleGAN-and-pix2pix adds the Dropout only when it is on, shifting later indices.
  if (dropout > 0) seq->push_back(torch::nn::Dropout(dropout));
  pad = block_padding(padding, 1);
  if (pad.has_layer) seq->push_back(pad.layer);
  seq->push_back(make_conv(mid, dim, 3, 1, pad.conv_padding, use_bias));
  seq->push_back(make_norm(norm, dim));
  conv_block = register_module("conv_block", seq);
}

torch::Tensor ResnetBlockImpl::forward(torch::Tensor x) { return x + run_sequential(*conv_block, x); }

ResnetLikeGeneratorImpl::ResnetLikeGeneratorImpl(ArchConfig config, const std::string& expected_arch,
                                                 const BlockFactory& make_block)
    : GeneratorImpl(std::move(config)) {
  config_.validate();
  if (config_.arch != expected_arch) {
    throw UsageError("config arch '" + config_.arch + "' given to the " + expected_arch + " generator");
  }
  const auto w = config_.with_resolved_widths().widths;
  for (size_t i = 0; i < w.blocks.size(); ++i) {
    require(w.blocks[i].at(0) > 0, "widths.blocks[" + std::to_string(i) + "] must be positive for " + config_.arch);
  }
  const std::string& norm = config_.norm;
  const bool use_bias = norm_uses_bias(norm);

  torch::nn::Sequential seq;
  // The stem's pad is a ReflectionPad2d whatever the padding type (as in the public code).
  seq->push_back(torch::nn::ReflectionPad2d(3));
  seq->push_back(make_conv(config_.input_nc, w.stem, 7, 1, 0, use_bias));
  seq->push_back(make_norm(norm, w.stem));
  seq->push_back(torch::nn::ReLU());
  const int64_t down_in[2] = {w.stem, w.down1};
  const int64_t down_out[2] = {w.down1, w.trunk};
  for (int i = 0; i < 2; ++i) {
    seq->push_back(make_conv(down_in[i], down_out[i], 3, 2, 1, use_bias));
    seq->push_back(make_norm(norm, down_out[i]));
    seq->push_back(torch::nn::ReLU());
  }
  for (int i = 0; i < config_.n_blocks; ++i) {
    size_t first_norm = 0;
    seq->push_back(make_block(config_, w.trunk, w.blocks[static_cast<size_t>(i)][0], &first_norm));
    block_first_norm_.push_back(first_norm);
  }
  const int64_t up_in[2] = {w.trunk, w.up1};
  const int64_t up_out[2] = {w.up1, w.up2};
  for (int i = 0; i < 2; ++i) {
    seq->push_back(torch::nn::ConvTranspose2d(torch::nn::ConvTranspose2dOptions(up_in[i], up_out[i], 3)
                                                  .stride(2)
                                                  .padding(1)
                                                  .output_padding(1)
                                                  .bias(use_bias)));
    seq->push_back(make_norm(norm, up_out[i]));
    seq->push_back(torch::nn::ReLU());
  }
  seq->push_back(torch::nn::ReflectionPad2d(3));
  seq->push_back(make_conv(w.up2, config_.output_nc, 7, 1, 0, true));
  seq->push_back(torch::nn::Tanh());
  model = register_module("model", seq);
}

torch::Tensor ResnetLikeGeneratorImpl::forward(torch::Tensor x) { return run_sequential(*model, std::move(x)); }

std::vector<size_t> ResnetLikeGeneratorImpl::tap_ends() const {
  const size_t n = static_cast<size_t>(config_.n_blocks);
  return {kBlocksBegin, kBlocksBegin + n / 3, kBlocksBegin + 2 * n / 3, kBlocksBegin + n};
}

GeneratorOutput ResnetLikeGeneratorImpl::forward_with_taps(torch::Tensor x) {
  GeneratorOutput out;
  size_t begin = 0;
  for (size_t end : tap_ends()) {
    x = run_sequential(*model, x, begin, end);
    out.taps.push_back(x);
    begin = end;
  }
  out.image = run_sequential(*model, x, begin);
  return out;
}

std::vector<std::string> ResnetLikeGeneratorImpl::tap_names() const {
  std::vector<std::string> names;
  for (size_t end : tap_ends()) names.push_back("model." + std::to_string(end - 1));
  return names;
}

std::vector<ScoredNorm> ResnetLikeGeneratorImpl::scored_norms() const {
  std::vector<ScoredNorm> norms;
  auto add = [&](size_t index, NormRole role, const std::string& suffix = "", int block = -1, int slot = -1) {
    std::shared_ptr<torch::nn::Module> module = model->ptr(index);
    std::string name = "model." + std::to_string(index);
    if (!suffix.empty()) {
      name += "." + suffix;
      module = module->named_modules("", false)[suffix];
    }
    norms.push_back({name, role, block, slot, module});
  };
  add(2, NormRole::stem);
  add(5, NormRole::down1);
  add(8, NormRole::trunk);
  for (size_t i = 0; i < block_first_norm_.size(); ++i) {
    add(kBlocksBegin + i, NormRole::block, "conv_block." + std::to_string(block_first_norm_[i]), static_cast<int>(i),
        0);
  }
  const size_t ups = kBlocksBegin + block_first_norm_.size();
  add(ups + 1, NormRole::up1);
  add(ups + 4, NormRole::up2);
  return norms;
}

ResnetGeneratorImpl::ResnetGeneratorImpl(ArchConfig config)
    : ResnetLikeGeneratorImpl(
          std::move(config), "resnet", [](const ArchConfig& c, int64_t dim, int64_t mid, size_t* first_norm) {
            ResnetBlock block(dim, mid, c.padding, c.norm, c.dropout, norm_uses_bias(c.norm));
            *first_norm = block->first_norm_index();
            return torch::nn::AnyModule(block);
          }) {}

}  // namespace ganlite::nn
