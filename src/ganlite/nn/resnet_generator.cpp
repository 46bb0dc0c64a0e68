#include "ganlite/nn/resnet_generator.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>

#include "ganlite/nn/forward_trace.h"
#include "ganlite/nn/import_keys.h"
#include "ganlite/nn/layers.h"
#include "ganlite/util/error.h"
#include "ganlite/util/text.h"

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

namespace ganlite::nn {

namespace {

// CAT pruning (compress/prune.h): the main path runs stem, downs, ups and the output conv through
// the masks in order; each block is a residual branch trunk -> its scored norm's mask -> trunk.
PrunePlan resnet_like_prune_plan(const GeneratorImpl& teacher, const std::vector<ScoredNorm>&, const ArchConfig&) {
  const auto& model = dynamic_cast<const ResnetLikeGeneratorImpl&>(teacher).model;
  const size_t first_block = ResnetLikeGeneratorImpl::kBlocksBegin;
  const size_t n_blocks = static_cast<size_t>(teacher.config().n_blocks);
  PrunePlan plan;
  PruneMask all;
  all.all = true;
  plan.main_targets = {{NormRole::stem}, {NormRole::down1}, {NormRole::trunk}, {NormRole::up1}, {NormRole::up2}, all};
  for (size_t i = 0; i < model->size(); ++i) {
    const std::string prefix = "model." + std::to_string(i);
    PruneSegment segment{prefix, prefix, model->ptr(i), false, {}};
    if (i >= first_block && i < first_block + n_blocks) {
      segment.residual_branch = true;
      segment.targets = {{NormRole::block, static_cast<int>(i - first_block), 0}, {NormRole::trunk}};
    }
    plan.segments.push_back(std::move(segment));
  }
  return plan;
}

// pytorch-CycleGAN-and-pix2pix's and gan-compression's `model.<i>` layout: widths from the conv
// shapes, a Dropout layer (gan-compression) or zero padding (no pad layers) from the block's
// indices, which are remapped to ours.
ImportInference import_resnet_like(const PublicStateDict& d, const ImportOptions& opts, bool mobile) {
  const std::string& arch = opts.arch;
  ImportInference out;
  ArchConfig& c = out.config;
  c.arch = arch;
  GeneratorWidths w;
  const torch::Tensor stem = d.need("model.1.weight", 4, "the 7x7 stem conv", arch);
  c.input_nc = dim_int(stem.size(1));
  w.stem = dim_int(stem.size(0));
  w.down1 = dim_int(d.need("model.4.weight", 4, "the first stride-2 conv", arch).size(0));
  w.trunk = dim_int(d.need("model.7.weight", 4, "the second stride-2 conv", arch).size(0));
  int n = 0;
  while (d.has_prefix("model." + std::to_string(10 + n) + ".conv_block.")) ++n;
  check_import_option(opts.n_blocks, n, "--n-blocks", "number of residual blocks (model.10 ...)", d.source());
  c.n_blocks = n;
  const std::string up0 = "model." + std::to_string(10 + n);
  const std::string up1 = "model." + std::to_string(13 + n);
  const std::string last = "model." + std::to_string(17 + n);
  w.up1 = dim_int(d.need(up0 + ".weight", 4, "the first transposed conv", arch).size(1));
  w.up2 = dim_int(d.need(up1 + ".weight", 4, "the second transposed conv", arch).size(1));
  c.output_nc = dim_int(d.need(last + ".weight", 4, "the 7x7 output conv", arch).size(0));

  c.norm = opts.norm.value_or(infer_import_norm(d, "model.2", "model.1"));
  if (!opts.norm) out.notes.push_back("norm inferred from model.2: " + c.norm);

  bool file_has_dropout_layer = mobile;  // gan-compression's mobile blocks always hold a Dropout
  bool file_zero_padding = false;
  for (int b = 0; b < n; ++b) {
    const std::string block = "model." + std::to_string(10 + b) + ".conv_block.";
    // The block's convs: plain 3x3 convs, or the pointwise half of a separable conv.
    std::vector<int> convs;
    for (int j : d.layer_indices(block)) {
      const std::string key = block + std::to_string(j) + (mobile ? ".conv.2.weight" : ".weight");
      const torch::Tensor t = d.get(key);
      if (t.defined() && t.dim() == 4) convs.push_back(j);
    }
    if (convs.size() != 2) {
      throw Error(d.source() + ": '" + block.substr(0, block.size() - 1) + "' holds " + std::to_string(convs.size()) +
                  (mobile ? " separable convs (keys '<i>.conv.2.weight')" : " convs") + ", expected 2 for a " + arch +
                  " block" + (mobile ? "" : " (is this a mobile_resnet checkpoint?)"));
    }
    const torch::Tensor first = d.get(block + std::to_string(convs[0]) + (mobile ? ".conv.2.weight" : ".weight"));
    w.blocks.push_back({dim_int(first.size(0))});
    const bool zero = convs[0] == 0;  // no pad layer in front: the convs pad themselves
    if (b == 0) file_zero_padding = zero;
    if (!mobile && convs[1] - convs[0] == (zero ? 4 : 5)) file_has_dropout_layer = true;
    if (mobile) {
      // SubMobileResnetGenerator declares the block's last norm over the middle width although it
      // normalises the trunk width: harmless without weights, unrepresentable (and unrunnable) with.
      const std::string norm_key = block + std::to_string(convs[1] + 1) + ".weight";
      const torch::Tensor t = d.get(norm_key);
      if (t.defined() && t.size(0) != w.trunk) {
        throw Error(d.source() + ": '" + norm_key + "' has " + std::to_string(t.size(0)) + " channels but the block " +
                    "outputs the trunk width " + std::to_string(w.trunk) + ": a gan-compression " +
                    "SubMobileResnetGenerator whose norms carry weights over the middle width cannot be represented " +
                    "by MobileResnetGenerator widths (PyTorch cannot run it either)");
      }
    }
  }
  if (n > 0) {
    if (opts.padding && (*opts.padding == "zero") != file_zero_padding) {
      throw Error(d.source() + ": --padding " + *opts.padding + " but the file's blocks " +
                  (file_zero_padding ? "have no pad layers (zero padding)" : "have pad layers (reflect or replicate)"));
    }
    c.padding = file_zero_padding ? "zero" : opts.padding.value_or("reflect");
    if (!file_zero_padding && !opts.padding) {
      out.notes.push_back("padding: reflect assumed (replicate has the same keys; use --padding replicate)");
    }
  } else {
    c.padding = opts.padding.value_or("reflect");
  }
  c.dropout = opts.dropout.value_or(0.0);
  finish_import_widths(c, w, opts.ngf, out.notes);

  if (mobile) {
    out.layout = c.widths.empty() ? "gan-compression MobileResnetGenerator"
                                  : "gan-compression SubMobileResnetGenerator (per-block widths)";
  } else {
    out.layout = file_has_dropout_layer ? "gan-compression ResnetGenerator (Dropout layer in every block)"
                                        : "pytorch-CycleGAN-and-pix2pix ResnetGenerator";
  }
  out.remap_layers = [&d, n](const StateDictTensors& ours, KeyRemap& remap) {
    for (int b = 0; b < n; ++b) {
      const std::string block = "model." + std::to_string(10 + b) + ".conv_block.";
      map_import_layers(d, block, ours, block, remap);
    }
  };
  return out;
}

}  // namespace

GeneratorFamily resnet_like_generator_family(
    std::string name, std::string description, bool separable_blocks, std::function<Generator(const ArchConfig&)> build,
    std::function<int64_t(int64_t trunk, const std::vector<int>& mids)> block_conv_weights) {
  GeneratorFamily f;
  f.name = std::move(name);
  f.description = std::move(description);
  f.build = std::move(build);
  f.size_multiple = [](const ArchConfig&) { return int64_t{4}; };  // two stride-2 stages
  f.conv_weight_count = [block_conv_weights](const ArchConfig& c) {
    return encoder_decoder_conv_weights(c, block_conv_weights);
  };
  f.widths_per_block = 1;
  f.default_widths = [](const ArchConfig& c) { return encoder_decoder_widths(c, {4 * c.ngf}); };
  f.taps = "model.9 (after the down stages), then blocks n/3, 2n/3 and n";
  f.prune.block_floor = 1;  // a ResNet block cannot vanish: its second conv still writes the trunk
  f.prune.plan = resnet_like_prune_plan;
  f.import_state_dict = [separable_blocks](const PublicStateDict& d, const ImportOptions& o) {
    return import_resnet_like(d, o, separable_blocks);
  };
  return f;
}

GeneratorFamily resnet_generator_family() {
  return resnet_like_generator_family(
      "resnet", "ResNet generator of pytorch-CycleGAN-and-pix2pix (methods.md 1.1)", false,
      [](const ArchConfig& c) -> Generator { return std::make_shared<ResnetGeneratorImpl>(c); },
      [](int64_t trunk, const std::vector<int>& mids) { return 2 * trunk * mids.at(0) * 9; });  // two 3x3 convs
}

}  // namespace ganlite::nn
