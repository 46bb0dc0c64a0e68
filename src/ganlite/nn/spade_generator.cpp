#include "ganlite/nn/spade_generator.h"

#include <torch/nn/functional/activation.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/instancenorm.h>

#include <algorithm>

#include "ganlite/nn/forward_trace.h"
#include "ganlite/nn/generator_family.h"
#include "ganlite/nn/import_keys.h"
#include "ganlite/nn/layers.h"
#include "ganlite/nn/spectral_norm.h"
#include "ganlite/util/error.h"

namespace ganlite::nn {

torch::Tensor resize_nearest(const torch::Tensor& segmap, const torch::Tensor& like) {
  if (segmap.size(2) == like.size(2) && segmap.size(3) == like.size(3)) return segmap;
  return torch::upsample_nearest2d(segmap, {like.size(2), like.size(3)});
}

torch::Tensor upsample2x(const torch::Tensor& x) { return torch::upsample_nearest2d(x, {2 * x.size(2), 2 * x.size(3)}); }

torch::nn::AnyModule make_param_free_norm(const std::string& norm, int64_t channels) {
  if (norm == "batch") {
    return torch::nn::AnyModule(
        torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(channels).affine(false).track_running_stats(true)));
  }
  return torch::nn::AnyModule(
      torch::nn::InstanceNorm2d(torch::nn::InstanceNorm2dOptions(channels).affine(false).track_running_stats(false)));
}

void validate_spade_config(const ArchConfig& c) {
  if (c.norm != "batch" && c.norm != "instance") {
    throw UsageError("norm '" + c.norm + "' is not a SPADE parameter-free norm for the " + c.arch +
                     " architecture (valid: batch, instance)");
  }
  if (c.label_nc != 0) {
    require(c.input_nc == c.label_nc + 1, "input_nc must be label_nc + 1 (one-hot labels plus the instance edge) for " +
                                              c.arch + ": label_nc " + std::to_string(c.label_nc) + ", input_nc " +
                                              std::to_string(c.input_nc));
  }
  for (const auto& [side, name] : {std::pair{c.input_height, "input_height"}, std::pair{c.input_width, "input_width"}}) {
    require(side % kSpadeSizeMultiple == 0, std::string(name) + " must be a multiple of 64 for " + c.arch + ", got " +
                                                std::to_string(side));
  }
}

std::pair<int64_t, int64_t> spade_training_size(const ArchConfig& c) {
  return {c.input_height > 0 ? c.input_height : kSpadeDefaultHeight,
          c.input_width > 0 ? c.input_width : kSpadeDefaultWidth};
}

SpadeImpl::SpadeImpl(const std::string& norm, int64_t norm_nc, int64_t label_nc) {
  param_free_norm = make_param_free_norm(norm, norm_nc);
  register_module("param_free_norm", param_free_norm.ptr());
  mlp_shared = register_module("mlp_shared", torch::nn::Sequential(make_conv(label_nc, kSpadeHidden, 3, 1, 1, true),
                                                                    torch::nn::ReLU()));
  mlp_gamma = torch::nn::AnyModule(make_conv(kSpadeHidden, norm_nc, 3, 1, 1, true));
  mlp_beta = torch::nn::AnyModule(make_conv(kSpadeHidden, norm_nc, 3, 1, 1, true));
  register_module("mlp_gamma", mlp_gamma.ptr());
  register_module("mlp_beta", mlp_beta.ptr());
}

torch::Tensor SpadeImpl::forward(const torch::Tensor& x, const torch::Tensor& segmap) {
  const torch::Tensor normalized = run_layer(param_free_norm, x);
  const torch::Tensor actv = run_sequential(*mlp_shared, resize_nearest(segmap, x));
  const torch::Tensor gamma = run_layer(mlp_gamma, actv);
  const torch::Tensor beta = run_layer(mlp_beta, actv);
  return normalized * (1 + gamma) + beta;
}

namespace {
// A block conv: plain (inference, the default) or with spectral norm (training, NVlabs' norm_G
// "spectral...": same bias, weight_orig / weight_u / weight_v instead of weight).
torch::nn::AnyModule make_block_conv(int64_t in, int64_t out, int64_t kernel, int64_t padding, bool bias,
                                     bool spectral_norm) {
  if (spectral_norm) return torch::nn::AnyModule(SpectralNormConv2d(in, out, kernel, 1, padding, bias));
  return torch::nn::AnyModule(make_conv(in, out, kernel, 1, padding, bias));
}
}  // namespace

SpadeResnetBlockImpl::SpadeResnetBlockImpl(int64_t fin, int64_t fout, int64_t label_nc, const std::string& norm,
                                           bool spectral_norm)
    : learned_shortcut(fin != fout) {
  const int64_t fmiddle = std::min(fin, fout);
  conv_0 = make_block_conv(fin, fmiddle, 3, 1, true, spectral_norm);
  conv_1 = make_block_conv(fmiddle, fout, 3, 1, true, spectral_norm);
  register_module("conv_0", conv_0.ptr());
  register_module("conv_1", conv_1.ptr());
  if (learned_shortcut) {
    conv_s = make_block_conv(fin, fout, 1, 0, false, spectral_norm);
    register_module("conv_s", conv_s.ptr());
  }
  norm_0 = register_module("norm_0", Spade(norm, fin, label_nc));
  norm_1 = register_module("norm_1", Spade(norm, fmiddle, label_nc));
  if (learned_shortcut) norm_s = register_module("norm_s", Spade(norm, fin, label_nc));
}

torch::Tensor SpadeResnetBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& segmap) {
  namespace F = torch::nn::functional;
  const auto actvn = [](const torch::Tensor& t) { return F::leaky_relu(t, F::LeakyReLUFuncOptions().negative_slope(0.2)); };
  const torch::Tensor x_s = learned_shortcut ? run_layer(conv_s, norm_s->forward(x, segmap)) : x;
  torch::Tensor dx = run_layer(conv_0, actvn(norm_0->forward(x, segmap)));
  dx = run_layer(conv_1, actvn(norm_1->forward(dx, segmap)));
  return x_s + dx;
}

SpadeGeneratorImpl::SpadeGeneratorImpl(ArchConfig config) : GeneratorImpl(std::move(config)) {
  config_.validate();
  if (config_.arch != "spade") throw UsageError("config arch '" + config_.arch + "' given to the spade generator");
  const int64_t nf = config_.ngf;
  const int64_t semantic_nc = config_.input_nc;
  fc = torch::nn::AnyModule(make_conv(semantic_nc, 16 * nf, 3, 1, 1, true));
  register_module("fc", fc.ptr());
  for (const auto& b : kSpadeBlocks) {
    blocks.push_back(register_module(b.name, SpadeResnetBlock(b.fin * nf, b.fout * nf, semantic_nc, config_.norm, config_.spectral_norm)));
  }
  conv_img = torch::nn::AnyModule(make_conv(nf, config_.output_nc, 3, 1, 1, true));
  register_module("conv_img", conv_img.ptr());
}

torch::Tensor spade_fc_input(const torch::Tensor& seg) {
  return torch::upsample_nearest2d(seg, {seg.size(2) / kSpadeSizeMultiple, seg.size(3) / kSpadeSizeMultiple});
}

GeneratorOutput run_spade_blocks(torch::Tensor stem, const torch::Tensor& seg, const SpadeBlockRun& block,
                                 torch::nn::AnyModule& conv_img, bool with_taps) {
  namespace F = torch::nn::functional;
  GeneratorOutput out;
  if (with_taps) out.taps.push_back(stem);
  torch::Tensor x = std::move(stem);
  for (size_t i = 0; i < kSpadeBlocks.size(); ++i) {
    if (kSpadeBlocks[i].upsample_before) x = upsample2x(x);
    x = block(i, x, seg);
    if (with_taps && (i == 0 || i == 2 || i == 4)) out.taps.push_back(x);  // head_0, G_middle_1, up_1
  }
  x = run_layer(conv_img, F::leaky_relu(x, F::LeakyReLUFuncOptions().negative_slope(0.2)));
  out.image = torch::tanh(x);
  return out;
}

GeneratorOutput SpadeGeneratorImpl::run(torch::Tensor seg, bool with_taps) {
  return run_spade_blocks(
      run_layer(fc, spade_fc_input(seg)), seg,
      [this](size_t i, const torch::Tensor& x, const torch::Tensor& s) { return blocks[i]->forward(x, s); }, conv_img,
      with_taps);
}

torch::Tensor SpadeGeneratorImpl::forward(torch::Tensor x) { return run(std::move(x), false).image; }
GeneratorOutput SpadeGeneratorImpl::forward_with_taps(torch::Tensor x) { return run(std::move(x), true); }
std::vector<std::string> SpadeGeneratorImpl::tap_names() const { return {"fc", "head_0", "G_middle_1", "up_1"}; }

std::vector<ScoredNorm> SpadeGeneratorImpl::scored_norms() const {
  throw UsageError("the spade generator has no scaled norms to prune by (valid: " +
                   join_names(prunable_generator_families(), ", ") + "; CAT prunes GauGAN as inception_spade)");
}

namespace {

// One SPADE(norm_nc) at `pixels` output positions: mlp_shared, mlp_gamma, mlp_beta (the
// parameter-free norm neither counts nor has parameters).
void add_spade_counts(SpadeCounts& n, int64_t semantic_nc, int64_t norm_nc, int64_t pixels) {
  n.add_conv(semantic_nc, kSpadeHidden, 3, 1, true, pixels);
  n.add_conv(kSpadeHidden, norm_nc, 3, 1, true, pixels);
  n.add_conv(kSpadeHidden, norm_nc, 3, 1, true, pixels);
}

}  // namespace

void SpadeCounts::add_conv(int64_t in, int64_t out, int64_t kernel, int64_t groups, bool bias, int64_t pixels) {
  const int64_t weights = out * (in / groups) * kernel * kernel;
  conv_weights += weights;
  params += weights + (bias ? out : 0);
  macs += pixels * weights;
}

void SpadeCounts::add_norm(int64_t channels, bool affine, int64_t pixels, bool counted) {
  if (!affine) return;
  params += 2 * channels;
  if (counted) macs += pixels * channels;
}

SpadeCounts spade_counts(const ArchConfig& c, int64_t height, int64_t width) {
  SpadeCounts n;
  const int64_t nf = c.ngf, sem = c.input_nc;
  int64_t h = height / kSpadeSizeMultiple, w = width / kSpadeSizeMultiple;
  n.add_conv(sem, 16 * nf, 3, 1, true, h * w);  // fc
  for (const auto& b : kSpadeBlocks) {
    if (b.upsample_before) h *= 2, w *= 2;
    const int64_t fin = b.fin * nf, fout = b.fout * nf, fmid = std::min(fin, fout), px = h * w;
    add_spade_counts(n, sem, fin, px);  // norm_0
    n.add_conv(fin, fmid, 3, 1, true, px);
    add_spade_counts(n, sem, fmid, px);  // norm_1
    n.add_conv(fmid, fout, 3, 1, true, px);
    if (fin != fout) {
      add_spade_counts(n, sem, fin, px);  // norm_s
      n.add_conv(fin, fout, 1, 1, false, px);
    }
  }
  n.add_conv(nf, c.output_nc, 3, 1, true, h * w);  // conv_img
  return n;
}

void read_spade_io(const PublicStateDict& d, const ImportOptions& opts, ArchConfig& c) {
  const torch::Tensor fc = d.need("fc.weight", 4, "the fc conv on the downsampled label map", opts.arch);
  require(fc.size(0) % 16 == 0, d.source() + ": 'fc.weight' has " + std::to_string(fc.size(0)) +
                                    " output channels, not 16 x ngf as GauGAN's");
  c.arch = opts.arch;
  c.input_nc = static_cast<int>(fc.size(1));
  c.ngf = static_cast<int>(fc.size(0) / 16);
  check_import_option(opts.ngf, c.ngf, "--ngf", "ngf (fc's width / 16)", d.source());
  c.output_nc = static_cast<int>(d.need("conv_img.weight", 4, "the output conv", opts.arch).size(0));
}

std::string spade_note_norm(const ArchConfig& c, const std::string& from) {
  return "SPADE parameter-free norm inferred from " + from + ": " + c.norm;
}

namespace {

// NVlabs' SPADEGenerator state dict: our keys are its keys (spectral norm is folded by the importer).
ImportInference import_spade(const PublicStateDict& d, const ImportOptions& opts) {
  ImportInference out;
  read_spade_io(d, opts, out.config);
  out.config.norm = opts.norm.value_or(d.has("head_0.norm_0.param_free_norm.running_mean") ? "batch" : "instance");
  if (!opts.norm) out.notes.push_back(spade_note_norm(out.config, "head_0.norm_0.param_free_norm"));
  out.layout = "NVlabs SPADEGenerator (num_upsampling_layers 'more')";
  out.remap_layers = [](const StateDictTensors&, KeyRemap&) {};
  return out;
}

}  // namespace

GeneratorFamily spade_generator_family() {
  GeneratorFamily f;
  f.name = "spade";
  f.description = "GauGAN's SPADE generator, num_upsampling_layers 'more' (NVlabs/SPADE, methods.md 1.5)";
  f.build = [](const ArchConfig& c) -> Generator { return std::make_shared<SpadeGeneratorImpl>(c); };
  f.size_multiple = [](const ArchConfig&) { return kSpadeSizeMultiple; };
  f.conv_weight_count = [](const ArchConfig& c) { return spade_counts(c, 0, 0).conv_weights; };
  f.block_count = [](const ArchConfig&) { return static_cast<int>(kSpadeBlocks.size()); };
  f.taps = "fc (the latent map), head_0, G_middle_1 and up_1 (CAT's KA layers)";
  f.validate = validate_spade_config;
  f.check_profile_size = [](const ArchConfig& c, int64_t side) {
    require(side % kSpadeSizeMultiple == 0,
            "--input-size must be a multiple of 64 for " + c.arch + ", got " + std::to_string(side));
  };
  f.default_profile_size = spade_training_size;
  f.describe = [](const ArchConfig& c) {
    return c.arch + " ngf " + std::to_string(c.ngf) + ", " + std::to_string(c.input_nc) + " label channels";
  };
  f.import_state_dict = import_spade;
  return f;
}

}  // namespace ganlite::nn
