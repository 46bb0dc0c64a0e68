#include "ganlite/nn/inception_spade_generator.h"

#include <torch/nn/functional/activation.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/instancenorm.h>

#include <algorithm>
#include <functional>

#include "ganlite/nn/forward_trace.h"
#include "ganlite/nn/generator_family.h"
#include "ganlite/nn/inception_generator.h"
#include "ganlite/nn/layers.h"
#include "ganlite/util/error.h"

namespace ganlite::nn {

namespace {

// CAT's norm_layer: SynchronizedBatchNorm2d (running statistics) or InstanceNorm2d, affine as asked.
torch::nn::AnyModule block_norm(const std::string& norm, int64_t channels, bool affine) {
  if (norm == "batch") {
    return torch::nn::AnyModule(
        torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(channels).affine(affine).track_running_stats(true)));
  }
  return torch::nn::AnyModule(
      torch::nn::InstanceNorm2d(torch::nn::InstanceNorm2dOptions(channels).affine(affine).track_running_stats(false)));
}

// The block's active_fn (CAT's spade model sets nn.LeakyReLU, slope 0.01) and the SPADE's ReLU.
torch::nn::AnyModule leaky() {
  return torch::nn::AnyModule(torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(0.01)));
}
torch::nn::AnyModule relu() { return torch::nn::AnyModule(torch::nn::ReLU()); }

// Sum of the branches in CAT's order (sum(res) + sum(dw)); undefined when there is none.
torch::Tensor branch_sum(std::vector<torch::nn::Sequential>& res, std::vector<torch::nn::Sequential>& dw,
                         const torch::Tensor& x) {
  auto sum_of = [&x](std::vector<torch::nn::Sequential>& branches) {
    torch::Tensor sum;
    for (auto& branch : branches) {
      torch::Tensor y = run_sequential(*branch, x);
      sum = sum.defined() ? sum + y : y;
    }
    return sum;
  };
  torch::Tensor r = sum_of(res), d = sum_of(dw);
  return !r.defined() ? d : !d.defined() ? r : r + d;
}

std::vector<InceptionBranchNorm> branch_first_norms(const std::string& prefix,
                                                    const std::vector<torch::nn::Sequential>& res,
                                                    const std::vector<int>& res_slots,
                                                    const std::vector<torch::nn::Sequential>& dw,
                                                    const std::vector<int>& dw_slots) {
  std::vector<InceptionBranchNorm> out;
  for (size_t j = 0; j < res.size(); ++j) {
    out.push_back({prefix + "res_ops." + std::to_string(j) + ".0.norm", res_slots[j], res[j]->named_modules("", false)["0.norm"]});
  }
  for (size_t j = 0; j < dw.size(); ++j) {
    out.push_back({prefix + "dw_ops." + std::to_string(j) + ".0.norm", dw_slots[j], dw[j]->named_modules("", false)["0.norm"]});
  }
  return out;
}

}  // namespace

ConvNormActImpl::ConvNormActImpl(int64_t in, int64_t out, int64_t kernel, int64_t groups, torch::nn::AnyModule n,
                                 torch::nn::AnyModule a)
    : conv(make_conv(in, out, kernel, 1, (kernel - 1) / 2, true, groups)), norm(std::move(n)), active(std::move(a)) {
  register_module("conv", conv.ptr());
  register_module("norm", norm.ptr());
  register_module("active", active.ptr());
}

torch::Tensor ConvNormActImpl::forward(torch::Tensor x) {
  return run_layer(active, run_layer(norm, run_layer(conv, x)));
}

ConvOnlyImpl::ConvOnlyImpl(int64_t in, int64_t out, int64_t kernel, bool bias)
    : conv(make_conv(in, out, kernel, 1, (kernel - 1) / 2, bias)) {
  register_module("conv", conv.ptr());
}

torch::Tensor ConvOnlyImpl::forward(torch::Tensor x) { return run_layer(conv, x); }

InceptionSpadeImpl::InceptionSpadeImpl(const std::string& norm, int64_t nc, int64_t label_nc,
                                       const std::vector<int>& widths)
    : norm_nc(nc) {
  param_free_norm = make_param_free_norm(norm, nc);
  register_module("param_free_norm", param_free_norm.ptr());
  res_ops = register_module("res_ops", torch::nn::ModuleList());
  dw_ops = register_module("dw_ops", torch::nn::ModuleList());
  // CAT hard-codes SynchronizedBatchNorm2d(affine=True) and ReLU inside its inception SPADE.
  for (size_t j = 0; j < kInceptionKernels.size(); ++j) {
    const int64_t m = widths.at(j), k = kInceptionKernels[j];
    if (m == 0) continue;
    torch::nn::Sequential branch(ConvNormAct(label_nc, m, k, 1, block_norm("batch", m, true), relu()),
                                 make_conv(m, 2 * nc, k, 1, (k - 1) / 2, true));
    res_ops->push_back(branch);
    res_branches.push_back(branch);
    res_slots.push_back(static_cast<int>(j));
  }
  for (size_t j = 0; j < kInceptionKernels.size(); ++j) {
    const int64_t m = widths.at(3 + j), k = kInceptionKernels[j];
    if (m == 0) continue;
    torch::nn::Sequential branch(ConvNormAct(label_nc, m, 1, 1, block_norm("batch", m, true), relu()),
                                 ConvNormAct(m, m, k, m, block_norm("batch", m, true), relu()),
                                 make_conv(m, 2 * nc, 1, 1, 0, true));
    dw_ops->push_back(branch);
    dw_branches.push_back(branch);
    dw_slots.push_back(static_cast<int>(3 + j));
  }
}

torch::Tensor InceptionSpadeImpl::forward(const torch::Tensor& x, const torch::Tensor& segmap) {
  const torch::Tensor normalized = run_layer(param_free_norm, x);
  const torch::Tensor tmp = branch_sum(res_branches, dw_branches, resize_nearest(segmap, x));
  if (!tmp.defined()) return normalized;
  const torch::Tensor gamma = tmp.narrow(1, 0, norm_nc), beta = tmp.narrow(1, norm_nc, norm_nc);
  return normalized * (1 + gamma) + beta;
}

std::vector<InceptionBranchNorm> InceptionSpadeImpl::first_norms(int slot_offset) const {
  auto norms = branch_first_norms("spade.", res_branches, res_slots, dw_branches, dw_slots);
  for (auto& n : norms) n.slot += slot_offset;
  return norms;
}

SpadeInvertedResidualChannelsImpl::SpadeInvertedResidualChannelsImpl(int64_t fin, int64_t fout, int64_t label_nc,
                                                                     const std::string& norm,
                                                                     const std::vector<int>& widths) {
  require(widths.size() == kInceptionSpadeWidths, "an inception-SPADE block needs 12 widths");
  res_ops = register_module("res_ops", torch::nn::ModuleList());
  dw_ops = register_module("dw_ops", torch::nn::ModuleList());
  for (size_t j = 0; j < kInceptionKernels.size(); ++j) {
    const int64_t m = widths[j], k = kInceptionKernels[j];
    if (m == 0) continue;
    torch::nn::Sequential branch(ConvNormAct(fin, m, k, 1, block_norm(norm, m, true), leaky()),
                                 ConvOnly(m, fout, k, true));
    res_ops->push_back(branch);
    res_branches.push_back(branch);
    res_slots.push_back(static_cast<int>(j));
  }
  for (size_t j = 0; j < kInceptionKernels.size(); ++j) {
    const int64_t m = widths[3 + j], k = kInceptionKernels[j];
    if (m == 0) continue;
    torch::nn::Sequential branch(ConvNormAct(fin, m, 1, 1, block_norm(norm, m, true), leaky()),
                                 ConvNormAct(m, m, k, m, block_norm(norm, m, false), leaky()),
                                 ConvOnly(m, fout, 1, true));
    dw_ops->push_back(branch);
    dw_branches.push_back(branch);
    dw_slots.push_back(static_cast<int>(3 + j));
  }
  if (fin != fout) {
    shortcut = register_module("shortcut", torch::nn::Sequential(block_norm(norm, fin, true), ConvOnly(fin, fout, 1, false)));
  }
  spade = register_module(
      "spade", InceptionSpade(norm, fin, label_nc, std::vector<int>(widths.begin() + 6, widths.end())));
}

torch::Tensor SpadeInvertedResidualChannelsImpl::forward(const torch::Tensor& x, const torch::Tensor& segmap) {
  const torch::Tensor skip = shortcut ? run_sequential(*shortcut, x) : x;
  if (res_branches.empty() && dw_branches.empty()) return skip;
  namespace F = torch::nn::functional;
  const torch::Tensor a = F::leaky_relu(spade->forward(x, segmap), F::LeakyReLUFuncOptions().negative_slope(0.01));
  return branch_sum(res_branches, dw_branches, a) + skip;
}

std::vector<InceptionBranchNorm> SpadeInvertedResidualChannelsImpl::first_norms() const {
  auto norms = branch_first_norms("", res_branches, res_slots, dw_branches, dw_slots);
  for (auto& n : spade->first_norms(6)) norms.push_back(std::move(n));
  return norms;
}

std::vector<std::vector<int>> inception_spade_default_widths(const ArchConfig& c) {
  std::vector<std::vector<int>> blocks;
  for (const auto& b : kSpadeBlocks) {
    const int mid = std::min(b.fin, b.fout) * c.ngf / kInceptionSpadeReduction;
    const int spade_mid = static_cast<int>(kSpadeHidden) / kInceptionSpadeReduction;
    std::vector<int> w(6, mid);
    w.resize(kInceptionSpadeWidths, spade_mid);
    blocks.push_back(w);
  }
  return blocks;
}

InceptionSpadeGeneratorImpl::InceptionSpadeGeneratorImpl(ArchConfig config) : GeneratorImpl(std::move(config)) {
  config_.validate();
  if (config_.arch != "inception_spade") {
    throw UsageError("config arch '" + config_.arch + "' given to the inception_spade generator");
  }
  const int64_t nf = config_.ngf, sem = config_.input_nc;
  const auto widths = config_.widths.empty() ? inception_spade_default_widths(config_) : config_.widths.blocks;
  // CAT's fc_norm is a SynchronizedBatchNorm2d whatever norm_G says.
  fc_norm = block_norm("batch", 16 * nf, true);
  register_module("fc_norm", fc_norm.ptr());
  fc = torch::nn::AnyModule(make_conv(sem, 16 * nf, 3, 1, 1, true));
  register_module("fc", fc.ptr());
  for (size_t i = 0; i < kSpadeBlocks.size(); ++i) {
    const auto& b = kSpadeBlocks[i];
    blocks.push_back(register_module(
        b.name, SpadeInvertedResidualChannels(b.fin * nf, b.fout * nf, sem, config_.norm, widths[i])));
  }
  conv_img = torch::nn::AnyModule(make_conv(nf, config_.output_nc, 3, 1, 1, true));
  register_module("conv_img", conv_img.ptr());
}

GeneratorOutput InceptionSpadeGeneratorImpl::run(torch::Tensor seg, bool with_taps) {
  return run_spade_blocks(
      run_layer(fc_norm, run_layer(fc, spade_fc_input(seg))), seg,
      [this](size_t i, const torch::Tensor& x, const torch::Tensor& s) { return blocks[i]->forward(x, s); }, conv_img,
      with_taps);
}

torch::Tensor InceptionSpadeGeneratorImpl::forward(torch::Tensor x) { return run(std::move(x), false).image; }
GeneratorOutput InceptionSpadeGeneratorImpl::forward_with_taps(torch::Tensor x) { return run(std::move(x), true); }
std::vector<std::string> InceptionSpadeGeneratorImpl::tap_names() const {
  return {"fc_norm", "head_0", "G_middle_1", "up_1"};
}

std::vector<ScoredNorm> InceptionSpadeGeneratorImpl::scored_norms() const {
  std::vector<ScoredNorm> norms;
  norms.push_back({"fc_norm", NormRole::trunk, -1, -1, fc_norm.ptr()});
  for (size_t i = 0; i < blocks.size(); ++i) {
    for (auto& n : blocks[i]->first_norms()) {
      norms.push_back({std::string(kSpadeBlocks[i].name) + "." + n.name, NormRole::block, static_cast<int>(i), n.slot,
                       n.module});
    }
  }
  return norms;
}

SpadeCounts inception_spade_counts(const ArchConfig& c, int64_t height, int64_t width, bool count_batchnorm) {
  SpadeCounts n;
  // Norms with running statistics: fc_norm and the SPADE branches' always, the block's for "batch".
  const bool bn = count_batchnorm, block_bn = count_batchnorm || c.norm != "batch";
  const int64_t nf = c.ngf, sem = c.input_nc;
  const auto widths = c.widths.empty() ? inception_spade_default_widths(c) : c.widths.blocks;
  int64_t h = height / kSpadeSizeMultiple, w = width / kSpadeSizeMultiple;
  n.add_conv(sem, 16 * nf, 3, 1, true, h * w);  // fc
  n.add_norm(16 * nf, true, h * w, bn);         // fc_norm
  for (size_t i = 0; i < kSpadeBlocks.size(); ++i) {
    const auto& b = kSpadeBlocks[i];
    if (b.upsample_before) h *= 2, w *= 2;
    const int64_t fin = b.fin * nf, fout = b.fout * nf;
    const auto& wb = widths[i];
    bool has_branch = false;
    for (size_t s = 0; s < 6; ++s) has_branch = has_branch || wb[s] > 0;
    // A block without branches skips its SPADE: parameters, no MACs.
    const int64_t px = h * w, spade_px = has_branch ? px : 0;
    for (size_t j = 0; j < kInceptionKernels.size(); ++j) {
      const int64_t k = kInceptionKernels[j];
      if (const int64_t m = wb[j]; m > 0) {
        n.add_conv(fin, m, k, 1, true, px);
        n.add_norm(m, true, px, block_bn);
        n.add_conv(m, fout, k, 1, true, px);
      }
      if (const int64_t m = wb[3 + j]; m > 0) {
        n.add_conv(fin, m, 1, 1, true, px);
        n.add_norm(m, true, px, block_bn);
        n.add_conv(m, m, k, m, true, px);
        n.add_conv(m, fout, 1, 1, true, px);
      }
      if (const int64_t m = wb[6 + j]; m > 0) {
        n.add_conv(sem, m, k, 1, true, spade_px);
        n.add_norm(m, true, spade_px, bn);
        n.add_conv(m, 2 * fin, k, 1, true, spade_px);
      }
      if (const int64_t m = wb[9 + j]; m > 0) {
        n.add_conv(sem, m, 1, 1, true, spade_px);
        n.add_norm(m, true, spade_px, bn);
        n.add_conv(m, m, k, m, true, spade_px);
        n.add_norm(m, true, spade_px, bn);
        n.add_conv(m, 2 * fin, 1, 1, true, spade_px);
      }
    }
    if (fin != fout) {
      n.add_norm(fin, true, px, block_bn);
      n.add_conv(fin, fout, 1, 1, false, px);
    }
  }
  n.add_conv(nf, c.output_nc, 3, 1, true, h * w);  // conv_img
  return n;
}

namespace {

// One kind of branch in a block ("head_0.", "res_ops."): its slots' widths from the file, and the
// renaming of the file's indices to ours (ours are ordered by kernel, absent branches skipped, as
// CAT builds them; a file in another order is remapped).
struct BranchKind {
  std::string ops;        // "res_ops." / "dw_ops." / "spade.res_ops." / "spade.dw_ops."
  const char* inner;      // the tensor whose shape gives width and kernel
  int first_slot;         // 0, 3, 6, 9
};

void read_branches(const PublicStateDict& d, const std::string& arch, const std::string& block, const BranchKind& kind,
                   std::vector<int>& widths, std::vector<std::pair<std::string, int>>& file_slots) {
  const std::string ops = block + "." + kind.ops;
  for (int j : d.layer_indices(ops)) {
    const std::string key = ops + std::to_string(j) + kind.inner;
    const torch::Tensor conv = d.need(key, 4, "the branch conv that gives its width and kernel", arch);
    const int64_t k = conv.size(3);
    const auto kernel = std::find(kInceptionKernels.begin(), kInceptionKernels.end(), k);
    if (kernel == kInceptionKernels.end() || conv.size(2) != k) {
      throw Error(d.source() + ": '" + key + "' has kernel " + std::to_string(conv.size(2)) + "x" + std::to_string(k) +
                  "; CAT's inception-SPADE branches use square kernels 1, 3 or 5");
    }
    const int slot = kind.first_slot + static_cast<int>(kernel - kInceptionKernels.begin());
    if (widths[static_cast<size_t>(slot)] != 0) {
      throw Error(d.source() + ": '" + key + "' is a second branch with kernel " + std::to_string(k) + " under '" +
                  ops + "'; ganlite's inception-SPADE block has one branch per kernel size");
    }
    widths[static_cast<size_t>(slot)] = static_cast<int>(conv.size(0));
    file_slots.push_back({ops + std::to_string(j) + ".", slot});
  }
}

// CAT's InceptionSPADEGenerator state dict (teacher or pruned student): ngf from fc (a student's
// trunk is 16 x its ngf, as CAT's pruning rounds it), branch widths from the convs' shapes.
ImportInference import_inception_spade(const PublicStateDict& d, const ImportOptions& opts) {
  ImportInference out;
  ArchConfig& c = out.config;
  read_spade_io(d, opts, c);
  d.need("fc_norm.weight", 1, "fc_norm, the scaled norm after fc", opts.arch);
  const bool batch = d.has("head_0.res_ops.0.0.norm.running_mean") || d.has("head_0.dw_ops.0.0.norm.running_mean") ||
                     d.has("head_0.spade.param_free_norm.running_mean");
  c.norm = opts.norm.value_or(batch ? "batch" : "instance");
  if (!opts.norm) out.notes.push_back(spade_note_norm(c, "head_0's norms"));
  const std::vector<BranchKind> kinds{
      {"res_ops.", ".0.conv.weight", 0}, {"dw_ops.", ".1.conv.weight", 3},
      {"spade.res_ops.", ".0.conv.weight", 6}, {"spade.dw_ops.", ".1.conv.weight", 9}};
  GeneratorWidths w;
  std::vector<std::pair<std::string, int>> file_slots;  // file prefix, slot
  for (const auto& b : kSpadeBlocks) {
    std::vector<int> widths(kInceptionSpadeWidths, 0);
    for (const auto& kind : kinds) read_branches(d, opts.arch, b.name, kind, widths, file_slots);
    w.blocks.push_back(widths);
  }
  finish_import_widths(c, w, c.ngf, out.notes);
  out.layout = c.widths.empty() ? "CAT InceptionSPADEGenerator" : "CAT InceptionSPADEGenerator (pruned student)";
  out.remap_layers = [file_slots, blocks = w.blocks](const StateDictTensors&, KeyRemap& remap) {
    for (const auto& [prefix, slot] : file_slots) {
      const std::string block = prefix.substr(0, prefix.find('.'));
      size_t b = 0;
      while (kSpadeBlocks[b].name != block) ++b;
      const int first = slot / 3 * 3;
      int ours = 0;
      for (int s = first; s < slot; ++s) ours += blocks[b][static_cast<size_t>(s)] > 0 ? 1 : 0;
      const std::string ops = prefix.substr(0, prefix.rfind('.', prefix.size() - 2) + 1);
      remap.add(prefix, ops + std::to_string(ours) + ".");
    }
  };
  return out;
}

// CAT's shrink_spade_model (snap-research/CAT utils/common.py): the trunk keeps fc_norm's
// surviving channels rounded down to a multiple of 16 (its ch_div; ngf = trunk / 16, at least 1,
// at most the teacher's), each later block halving it as GauGAN does; each branch keeps its first
// norm's survivors (0: absent).
ArchConfig inception_spade_student(const ArchConfig& teacher, const std::function<int(NormRole, int, int)>& kept) {
  ArchConfig s = teacher;
  s.widths = {};
  s.ngf = std::clamp(kept(NormRole::trunk, -1, -1) / 16, 1, teacher.ngf);
  GeneratorWidths w;
  for (int b = 0; b < static_cast<int>(kSpadeBlocks.size()); ++b) {
    std::vector<int> block;
    for (int slot = 0; slot < static_cast<int>(kInceptionSpadeWidths); ++slot) block.push_back(kept(NormRole::block, b, slot));
    w.blocks.push_back(block);
  }
  if (w.blocks != inception_spade_default_widths(s)) s.widths = w;
  return s;
}

// The `count` channels with the largest scores, in ascending index order.
torch::Tensor top_channels(const torch::Tensor& score, int64_t count) {
  const torch::Tensor s = score.detach().to(torch::kCPU, torch::kFloat64);
  if (count >= s.numel()) return torch::arange(s.numel(), torch::kLong);
  return std::get<0>(std::get<1>(torch::topk(s, count)).sort());
}

// The L1 norm of every teacher filter writing a block's output channel (the branches' last convs
// and the shortcut conv): GauGAN's up blocks halve the width, and no norm scores their outputs,
// so the student keeps the channels written most strongly (filter-L1 ranking, Li et al. 2017).
torch::Tensor block_output_l1(const torch::nn::Module& block, int64_t fout) {
  torch::Tensor score = torch::zeros({fout}, torch::kFloat64);
  auto ends_with = [](const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  for (const auto& p : block.named_parameters()) {
    const std::string& key = p.key();
    const bool writes_output = (key.rfind("res_ops.", 0) == 0 && ends_with(key, ".1.conv.weight")) ||
                               (key.rfind("dw_ops.", 0) == 0 && ends_with(key, ".2.conv.weight")) ||
                               key == "shortcut.1.conv.weight";
    if (writes_output) score += p.value().detach().abs().sum({1, 2, 3}).to(torch::kCPU, torch::kFloat64);
  }
  return score;
}

PruneMask explicit_channels(torch::Tensor channels) {
  PruneMask m;
  m.channels = std::move(channels);
  return m;
}

// Weight inheritance (compress/prune.h), slicing as CAT's shrink_model does for its inception
// generator (snap-research/CAT utils/common.py: conv weights [out][:, in], norms' weight, bias,
// running statistics and num_batches_tracked), on the GauGAN layout, where CAT's
// shrink_spade_model keeps only the architecture. Trunk (fc, fc_norm, head_0..G_middle_1): the
// student's 16 ngf channels with the largest |gamma| of fc_norm (its survivors, CAT's rounding to
// 16 dropping the smallest); up blocks' outputs: block_output_l1; branches: their first norm's
// survivors; each SPADE's gamma / beta convs: the block input's channels in both halves.
PrunePlan inception_spade_prune_plan(const GeneratorImpl& teacher, const std::vector<ScoredNorm>&,
                                     const ArchConfig& student) {
  const auto& gen = dynamic_cast<const InceptionSpadeGeneratorImpl&>(teacher);
  auto modules = gen.named_modules("", false);
  const auto widths = student.widths.empty() ? inception_spade_default_widths(student) : student.widths.blocks;
  const int64_t tnf = teacher.config().ngf, snf = student.ngf;
  PrunePlan plan;
  PruneMask all;
  all.all = true;
  auto add = [&](const std::string& tname, const std::string& sname, const PruneMask& input,
                 std::vector<PruneMask> targets) {
    plan.segments.push_back({tname, sname, modules[tname], true, std::move(targets), input});
  };
  PruneMask current = explicit_channels(top_channels(gen.fc_norm.ptr()->named_parameters()["weight"].abs(), 16 * snf));
  add("fc", "fc", all, {current});
  add("fc_norm", "fc_norm", current, {});
  for (size_t b = 0; b < kSpadeBlocks.size(); ++b) {
    const auto& layout = kSpadeBlocks[b];
    const std::string name = layout.name;
    const auto& block = *gen.blocks[b];
    PruneMask out = current;
    if (layout.fin != layout.fout) {
      out = explicit_channels(top_channels(block_output_l1(block, layout.fout * tnf), layout.fout * snf));
    }
    const PruneMask gamma_beta = explicit_channels(torch::cat({current.channels, current.channels + layout.fin * tnf}));
    // One kind of branch: teacher index j among its present branches, the student's among its own.
    auto add_branches = [&](const std::string& ops, const std::vector<int>& slots, int slot_offset, bool depthwise,
                            const PruneMask& input, const PruneMask& output) {
      for (size_t j = 0; j < slots.size(); ++j) {
        const int slot = slots[j] + slot_offset;
        if (widths[b][static_cast<size_t>(slot)] == 0) continue;
        int sj = 0;
        for (int s = slot / 3 * 3; s < slot; ++s) sj += widths[b][static_cast<size_t>(s)] > 0 ? 1 : 0;
        const std::string t = name + "." + ops + std::to_string(j), st = name + "." + ops + std::to_string(sj);
        const PruneMask mid{NormRole::block, static_cast<int>(b), slot};
        add(t + ".0", st + ".0", input, {mid});
        if (depthwise) add(t + ".1", st + ".1", mid, {mid});
        add(t + (depthwise ? ".2" : ".1"), st + (depthwise ? ".2" : ".1"), mid, {output});
      }
    };
    add_branches("res_ops.", block.res_slots, 0, false, current, out);
    add_branches("dw_ops.", block.dw_slots, 0, true, current, out);
    add_branches("spade.res_ops.", block.spade->res_slots, 6, false, all, gamma_beta);  // slots 6..11
    add_branches("spade.dw_ops.", block.spade->dw_slots, 6, true, all, gamma_beta);
    add(name + ".spade.param_free_norm", name + ".spade.param_free_norm", current, {});
    if (block.shortcut) add(name + ".shortcut", name + ".shortcut", current, {out});
    current = out;
  }
  add("conv_img", "conv_img", current, {all});
  return plan;
}

}  // namespace

GeneratorFamily inception_spade_generator_family() {
  GeneratorFamily f;
  f.name = "inception_spade";
  f.description = "CAT's inception-SPADE GauGAN generator (snap-research/CAT, methods.md 1.5)";
  f.build = [](const ArchConfig& c) -> Generator { return std::make_shared<InceptionSpadeGeneratorImpl>(c); };
  f.size_multiple = [](const ArchConfig&) { return kSpadeSizeMultiple; };
  f.conv_weight_count = [](const ArchConfig& c) { return inception_spade_counts(c, 0, 0).conv_weights; };
  f.widths_per_block = kInceptionSpadeWidths;
  f.default_widths = [](const ArchConfig& c) {
    GeneratorWidths w;
    w.blocks = inception_spade_default_widths(c);
    return w;
  };
  f.block_count = [](const ArchConfig&) { return static_cast<int>(kSpadeBlocks.size()); };
  f.block_widths_only = true;
  f.taps = "fc_norm (the latent map), head_0, G_middle_1 and up_1 (CAT's KA layers)";
  f.validate = validate_spade_config;
  f.check_profile_size = [](const ArchConfig& c, int64_t side) {
    require(side % kSpadeSizeMultiple == 0,
            "--input-size must be a multiple of 64 for " + c.arch + ", got " + std::to_string(side));
  };
  f.default_profile_size = spade_training_size;
  f.describe = [](const ArchConfig& c) {
    return c.arch + " ngf " + std::to_string(c.ngf) + ", " + std::to_string(c.input_nc) + " label channels" +
           (c.widths.empty() ? "" : " (pruned widths)");
  };
  f.import_state_dict = import_inception_spade;
  f.prune.block_floor = 0;  // a branch may vanish; a block with none left is its shortcut
  f.prune.student_config = inception_spade_student;
  f.prune.plan = inception_spade_prune_plan;
  f.prune.macs = [](const ArchConfig& c, bool count_batchnorm) {
    const auto [h, w] = spade_training_size(c);
    return inception_spade_counts(c, h, w, count_batchnorm).macs;
  };
  return f;
}

}  // namespace ganlite::nn
