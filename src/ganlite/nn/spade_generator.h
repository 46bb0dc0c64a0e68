// GauGAN's SPADE generator (NVlabs/SPADE models/networks/generator.py SPADEGenerator with
// num_upsampling_layers "more", methods.md 1.5), with the public code's state-dict keys, and what
// it shares with CAT's inception-SPADE generator (inception_spade_generator.h): the label-map
// input, the fixed block layout and the nearest-neighbour resizing.
//
// Input: [N, label_nc + 1, H, W], one-hot labels plus the instance-edge channel, H and W multiples
// of 64. `fc` runs on the label map resized (nearest) to H/64 x W/64, then head_0, G_middle_0,
// G_middle_1, up_0 .. up_3 with a x2 nearest upsample before every block but head_0, then
// LeakyReLU 0.2, conv_img, tanh. ArchConfig::norm is SPADE's parameter-free norm: "batch"
// (spadesyncbatch3x3, the cityscapes setting) or "instance" (spadeinstance3x3).
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>

#include <array>
#include <cstdint>
#include <functional>
#include <utility>
#include <string>
#include <vector>

#include "ganlite/nn/generator.h"
#include "ganlite/nn/import_keys.h"

namespace ganlite::nn {

// The seven blocks in execution order, with their widths in units of ngf (fin, fout).
struct SpadeBlockLayout {
  const char* name;
  int fin, fout;
  bool upsample_before;  // a x2 nearest upsample runs before the block
};
constexpr std::array<SpadeBlockLayout, 7> kSpadeBlocks{{{"head_0", 16, 16, false},
                                                        {"G_middle_0", 16, 16, true},
                                                        {"G_middle_1", 16, 16, true},
                                                        {"up_0", 16, 8, true},
                                                        {"up_1", 8, 4, true},
                                                        {"up_2", 4, 2, true},
                                                        {"up_3", 2, 1, true}}};
// num_upsampling_layers "more": fc runs at 1/64 of the input side.
constexpr int64_t kSpadeSizeMultiple = 64;
// SPADE's hidden width ("Yes, hardcoded", NVlabs normalization.py).
constexpr int64_t kSpadeHidden = 128;
// The training resolution when the config gives none (cityscapes 256x512).
constexpr int kSpadeDefaultHeight = 256;
constexpr int kSpadeDefaultWidth = 512;

// MACs and parameters by methods.md section 5, from the config alone (no module, no forward): the
// 256x512 teacher's 281G would take a minute to profile on a CPU. Tests hold them to the profiler.
struct SpadeCounts {
  int64_t macs = 0, params = 0;
  int64_t conv_weights = 0;  // elements of the 4-D weights (ArchConfig::conv_weight_count)
  // A conv (bias optional) with `pixels` output positions; an affine norm (non-affine: nothing).
  void add_conv(int64_t in, int64_t out, int64_t kernel, int64_t groups, bool bias, int64_t pixels);
  // counted = false: its parameters only (a norm a counting rule leaves out of the MACs).
  void add_norm(int64_t channels, bool affine, int64_t pixels, bool counted = true);
};
// The spade generator's counts on a height x width input (0 x 0: parameters only).
SpadeCounts spade_counts(const ArchConfig& c, int64_t height, int64_t width);

// Import helpers shared by the spade families: input_nc, ngf (fc's width / 16) and output_nc
// from the file; the note naming where the norm was inferred from.
void read_spade_io(const PublicStateDict& d, const ImportOptions& opts, ArchConfig& c);
std::string spade_note_norm(const ArchConfig& c, const std::string& from);

// The label map resized to `like`'s spatial size by nearest neighbour (F.interpolate's default).
torch::Tensor resize_nearest(const torch::Tensor& segmap, const torch::Tensor& like);
// nn.Upsample(scale_factor=2), nearest.
torch::Tensor upsample2x(const torch::Tensor& x);
// The walk both families share after their stem (fc; CAT's fc then fc_norm), which runs on
// spade_fc_input(seg): `stem` is the first tap; the blocks in kSpadeBlocks order, each given the
// label map, with a x2 nearest upsample where the layout says, tapped after head_0, G_middle_1
// and up_1 (the KA taps); then LeakyReLU 0.2, conv_img, tanh.
torch::Tensor spade_fc_input(const torch::Tensor& seg);
using SpadeBlockRun = std::function<torch::Tensor(size_t block, const torch::Tensor& x, const torch::Tensor& seg)>;
GeneratorOutput run_spade_blocks(torch::Tensor stem, const torch::Tensor& seg, const SpadeBlockRun& block,
                                 torch::nn::AnyModule& conv_img, bool with_taps);
// SPADE's parameter-free norm: BatchNorm2d / InstanceNorm2d with affine=false.
torch::nn::AnyModule make_param_free_norm(const std::string& norm, int64_t channels);
// Checks shared by the spade families (ArchConfig::validate's family part): norm, label_nc.
void validate_spade_config(const ArchConfig& c);
// The training resolution of a spade config (its input_height/width, else 256x512).
std::pair<int64_t, int64_t> spade_training_size(const ArchConfig& c);

// SPADE(norm_nc, label_nc): out = norm(x) (1 + gamma) + beta, gamma/beta from the resized map.
class SpadeImpl : public torch::nn::Module {
 public:
  SpadeImpl(const std::string& norm, int64_t norm_nc, int64_t label_nc);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& segmap);

  torch::nn::AnyModule param_free_norm;
  torch::nn::Sequential mlp_shared{nullptr};  // [conv 3x3 label_nc -> 128, ReLU]
  torch::nn::AnyModule mlp_gamma, mlp_beta;   // conv 3x3 128 -> norm_nc
};
TORCH_MODULE(Spade);

// SPADEResnetBlock(fin, fout): conv_0(actvn(norm_0(x))), conv_1(actvn(norm_1(.))), plus the
// shortcut: conv_s(norm_s(x)) (1x1, no bias) when fin != fout, else x. spectral_norm: the three
// convs are SpectralNormConv2d (nn/spectral_norm.h), as NVlabs' norm_G "spectral..." wraps them.
class SpadeResnetBlockImpl : public torch::nn::Module {
 public:
  SpadeResnetBlockImpl(int64_t fin, int64_t fout, int64_t label_nc, const std::string& norm,
                       bool spectral_norm = false);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& segmap);

  bool learned_shortcut = false;
  torch::nn::AnyModule conv_0, conv_1, conv_s;
  Spade norm_0{nullptr}, norm_1{nullptr}, norm_s{nullptr};
};
TORCH_MODULE(SpadeResnetBlock);

// Taps: fc (the latent map), head_0, G_middle_1, up_1 (CAT's KA layers for GauGAN).
class SpadeGeneratorImpl : public GeneratorImpl {
 public:
  explicit SpadeGeneratorImpl(ArchConfig config);

  torch::Tensor forward(torch::Tensor x) override;
  GeneratorOutput forward_with_taps(torch::Tensor x) override;
  std::vector<std::string> tap_names() const override;
  std::vector<ScoredNorm> scored_norms() const override;  // UsageError: not prunable

  torch::nn::AnyModule fc, conv_img;
  std::vector<SpadeResnetBlock> blocks;  // kSpadeBlocks order

 private:
  GeneratorOutput run(torch::Tensor x, bool with_taps);
};
TORCH_MODULE(SpadeGenerator);

}  // namespace ganlite::nn
