#include "ganlite/nn/inception_generator.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/padding.h>

#include <algorithm>
#include <map>

#include "ganlite/nn/forward_trace.h"
#include "ganlite/nn/generator_family.h"
#include "ganlite/nn/import_keys.h"
#include "ganlite/nn/layers.h"
#include "ganlite/util/error.h"
#include "ganlite/util/text.h"

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

namespace ganlite::nn {

namespace {

// res branches (k x k conv trunk -> res, then res -> trunk), then dw branches (1x1 in, depthwise
// k x k, 1x1 out).
int64_t inception_block_conv_weights(int64_t trunk, const std::vector<int>& mids) {
  int64_t n = 0;
  for (size_t j = 0; j < kInceptionKernels.size(); ++j) {
    const int64_t k2 = int64_t{kInceptionKernels[j]} * kInceptionKernels[j];
    const int64_t res = mids.at(j);
    const int64_t dw = mids.at(3 + j);
    n += 2 * trunk * res * k2;
    n += trunk * dw + dw * k2 + dw * trunk;
  }
  return n;
}

// CAT pruning (compress/prune.h): down_sampling and up_sampling on the main path; each surviving
// branch a residual branch, renumbered among the student's present branches of its kind; each
// block's pw_bn follows the trunk.
PrunePlan inception_prune_plan(const GeneratorImpl& teacher, const std::vector<ScoredNorm>& norms,
                               const ArchConfig& student) {
  const GeneratorWidths& widths = student.widths;
  const auto& gen = dynamic_cast<const InceptionGeneratorImpl&>(teacher);
  PrunePlan plan;
  PruneMask all;
  all.all = true;
  plan.main_targets = {{NormRole::stem}, {NormRole::down1}, {NormRole::trunk}, {NormRole::up1}, {NormRole::up2}, all};
  plan.segments.push_back({"down_sampling", "down_sampling", gen.down_sampling.ptr(), false, {}});

  // Teacher branches by block, in key order, with their slots.
  std::map<int, std::vector<std::pair<std::string, int>>> branches;
  for (const auto& norm : norms) {
    if (norm.role != NormRole::block) continue;
    branches[norm.block].push_back({norm.name.substr(0, norm.name.size() - 4), norm.slot});  // strip ".1.1"/".0.1"
  }
  const auto teacher_modules = gen.named_modules("", false);
  for (int b = 0; b < teacher.config().n_blocks; ++b) {
    int student_res = 0, student_dw = 0;
    for (const auto& [tname, slot] : branches[b]) {
      if (widths.blocks[static_cast<size_t>(b)][static_cast<size_t>(slot)] == 0) continue;
      const bool res = slot < 3;
      const std::string sname = "features." + std::to_string(b) + (res ? ".res_ops." : ".dw_ops.") +
                                std::to_string(res ? student_res++ : student_dw++);
      plan.segments.push_back({tname, sname, teacher_modules[tname], true, {{NormRole::block, b, slot}, {NormRole::trunk}}});
    }
    const std::string pw = "features." + std::to_string(b) + ".pw_bn";
    plan.segments.push_back({pw, pw, teacher_modules[pw], true, {}});
  }
  plan.segments.push_back({"up_sampling", "up_sampling", gen.up_sampling.ptr(), false, {}});
  return plan;
}

// CAT's `down_sampling` / `features` / `up_sampling` layout. A branch's kernel size comes from its
// conv's shape: pruned-away branches shift the indices, so index j of res_ops is not kernel
// kInceptionKernels[j] (CAT rebuilds students the same way); they are remapped to ours.
ImportInference import_inception(const PublicStateDict& d, const ImportOptions& opts) {
  const std::string& arch = opts.arch;
  ImportInference out;
  ArchConfig& c = out.config;
  c.arch = arch;
  GeneratorWidths w;
  const torch::Tensor stem = d.need("down_sampling.1.weight", 4, "the 7x7 stem conv", arch);
  c.input_nc = dim_int(stem.size(1));
  w.stem = dim_int(stem.size(0));
  w.down1 = dim_int(d.need("down_sampling.4.weight", 4, "the first stride-2 conv", arch).size(0));
  w.trunk = dim_int(d.need("down_sampling.7.weight", 4, "the second stride-2 conv", arch).size(0));
  w.up1 = dim_int(d.need("up_sampling.0.weight", 4, "the first transposed conv", arch).size(1));
  w.up2 = dim_int(d.need("up_sampling.3.weight", 4, "the second transposed conv", arch).size(1));
  c.output_nc = dim_int(d.need("up_sampling.7.weight", 4, "the 7x7 output conv", arch).size(0));
  c.norm = opts.norm.value_or(infer_import_norm(d, "down_sampling.2", "down_sampling.1"));
  if (!opts.norm) out.notes.push_back("norm inferred from down_sampling.2: " + c.norm);

  // Blocks without tensors (no branch and a weightless norm) are invisible, except between others.
  const std::vector<int> present = d.layer_indices("features.");
  int n = present.empty() ? 0 : present.back() + 1;
  if (opts.n_blocks) {
    if (*opts.n_blocks < n) check_import_option(opts.n_blocks, n, "--n-blocks", "number of inception blocks", d.source());
    if (*opts.n_blocks > n) {
      out.notes.push_back("blocks " + std::to_string(n) + ".." + std::to_string(*opts.n_blocks - 1) +
                          " have no tensors in the file: added as empty (identity) blocks");
    }
    n = *opts.n_blocks;
  }
  c.n_blocks = n;

  struct BranchMap {
    int block;
    bool res;
    int file_index;
    int slot;
  };
  std::vector<BranchMap> branches;
  for (int b = 0; b < n; ++b) {
    std::vector<int> widths(6, 0);
    for (int res = 1; res >= 0; --res) {
      const std::string ops = "features." + std::to_string(b) + (res ? ".res_ops." : ".dw_ops.");
      for (int j : d.layer_indices(ops)) {
        const std::string key = ops + std::to_string(j) + (res ? ".1.0.weight" : ".2.0.weight");
        const torch::Tensor conv = d.need(key, 4, res ? "the branch's kxk conv" : "the branch's depthwise conv", arch);
        const int64_t k = conv.size(3);
        const auto kernel = std::find(kInceptionKernels.begin(), kInceptionKernels.end(), k);
        if (kernel == kInceptionKernels.end() || conv.size(2) != k) {
          throw Error(d.source() + ": '" + key + "' has kernel " + std::to_string(conv.size(2)) + "x" +
                      std::to_string(k) + "; CAT's inception branches use square kernels 1, 3 or 5");
        }
        const int slot = static_cast<int>(kernel - kInceptionKernels.begin()) + (res ? 0 : 3);
        if (widths[static_cast<size_t>(slot)] != 0) {
          throw Error(d.source() + ": '" + key + "' is a second " + (res ? "res" : "dw") + " branch with kernel " +
                      std::to_string(k) + " in block " + std::to_string(b) +
                      "; ganlite's inception block has one branch per kernel size");
        }
        // Middle width: the res branch's first conv output, the dw branch's depthwise channels.
        widths[static_cast<size_t>(slot)] = dim_int(conv.size(0));
        branches.push_back({b, res == 1, j, slot});
      }
    }
    w.blocks.push_back(widths);
  }
  c.padding = opts.padding.value_or("reflect");
  if (!opts.padding) out.notes.push_back("padding: reflect assumed (pad layers have no tensors; use --padding)");
  c.dropout = opts.dropout.value_or(0.0);
  finish_import_widths(c, w, opts.ngf, out.notes);
  const bool pruned = !c.widths.empty();
  out.layout = pruned ? "CAT InceptionGenerator (pruned student)" : "CAT InceptionGenerator";

  const auto block_widths = c.with_resolved_widths().widths.blocks;
  out.remap_layers = [branches, block_widths](const StateDictTensors&, KeyRemap& remap) {
    for (const auto& br : branches) {
      // Our index: the rank of the branch's slot among the block's present branches of its kind.
      const auto& wb = block_widths[static_cast<size_t>(br.block)];
      int ours = 0;
      for (int s = br.res ? 0 : 3; s < br.slot; ++s) ours += wb[static_cast<size_t>(s)] > 0 ? 1 : 0;
      const std::string ops = "features." + std::to_string(br.block) + (br.res ? ".res_ops." : ".dw_ops.");
      remap.add(ops + std::to_string(br.file_index) + ".", ops + std::to_string(ours) + ".");
    }
  };
  return out;
}

}  // namespace

GeneratorFamily inception_generator_family() {
  GeneratorFamily f;
  f.name = "inception";
  f.description = "CAT's inception-residual generator (methods.md 1.3)";
  f.build = [](const ArchConfig& c) -> Generator { return std::make_shared<InceptionGeneratorImpl>(c); };
  f.size_multiple = [](const ArchConfig&) { return int64_t{4}; };  // two stride-2 stages
  f.conv_weight_count = [](const ArchConfig& c) { return encoder_decoder_conv_weights(c, inception_block_conv_weights); };
  f.widths_per_block = 6;  // res_k1, res_k3, res_k5, dw_k1, dw_k3, dw_k5
  f.default_widths = [](const ArchConfig& c) {
    const int trunk = 4 * c.ngf;
    return encoder_decoder_widths(c, std::vector<int>(6, trunk / 6));
  };
  f.taps = "down_sampling.9 (after the down stages), then blocks n/3, 2n/3 and n of features";
  // CAT's teachers: BatchNorm for pix2pix, affine InstanceNorm for CycleGAN (the scales are what
  // its pruning ranks), D with the generator's norm made affine (--norm_affine_D).
  f.scaled_norm_defaults = true;
  f.prune.block_floor = 0;  // a branch may vanish; a block with none left is the identity
  f.prune.plan = inception_prune_plan;
  f.import_state_dict = import_inception;
  return f;
}

}  // namespace ganlite::nn
