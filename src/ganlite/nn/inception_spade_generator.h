// CAT's inception-SPADE generator (snap-research/CAT models/modules/inception_architecture/
// inception_spade_generator.py and inception_modules.py SPADEInvertedResidualChannels /
// InceptionSPADE; methods.md 1.5), with the public code's state-dict keys. The layout is GauGAN's
// (spade_generator.h: fc at 1/64, seven blocks, conv_img) with `fc_norm` after `fc` and inception
// blocks:
//   block(fin, fout): a = LeakyReLU 0.01(spade(x, seg)); out = sum(res_ops(a)) + sum(dw_ops(a)) +
//                     shortcut(x) (BatchNorm + 1x1 conv when fin != fout, else x)
//     res_ops.j = [ConvNormAct(fin -> m, k), Conv(m -> fout, k)]
//     dw_ops.j  = [ConvNormAct(fin -> m, 1), ConvNormAct(m -> m, k, depthwise, non-affine), Conv(m -> fout, 1)]
//   spade(C):   norm(x) (1 + gamma) + beta, [gamma, beta] = sum of its own res_ops / dw_ops on the
//               resized label map (ReLU, affine BatchNorm, convs to 2C)
// with kernels 1, 3, 5, block widths min(fin, fout) // 6 and SPADE widths 128 // 6 = 21.
// ArchConfig::norm: "batch" (CAT's spadesyncbatch3x3) or "instance" for the block norms (fc_norm
// and the SPADE branches' norms are BatchNorm either way, as in CAT).
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>

#include <string>
#include <vector>

#include "ganlite/nn/generator.h"
#include "ganlite/nn/spade_generator.h"

namespace ganlite::nn {

// Widths of one block (ArchConfig::widths.blocks[i]): block res k1 k3 k5, block dw k1 k3 k5,
// spade res k1 k3 k5, spade dw k1 k3 k5 (0 = branch absent, later indices shift).
constexpr size_t kInceptionSpadeWidths = 12;
// CAT's channels_reduction_factor.
constexpr int kInceptionSpadeReduction = 6;

// CAT's ConvSyncBNReLU: `conv` (padding (k-1)/2, bias), `norm`, `active`.
class ConvNormActImpl : public torch::nn::Module {
 public:
  ConvNormActImpl(int64_t in, int64_t out, int64_t kernel, int64_t groups, torch::nn::AnyModule norm,
                  torch::nn::AnyModule active);
  torch::Tensor forward(torch::Tensor x);
  torch::nn::AnyModule conv, norm, active;
};
TORCH_MODULE(ConvNormAct);

// CAT's Conv: a module holding `conv` (padding (k-1)/2).
class ConvOnlyImpl : public torch::nn::Module {
 public:
  ConvOnlyImpl(int64_t in, int64_t out, int64_t kernel, bool bias);
  torch::Tensor forward(torch::Tensor x);
  torch::nn::AnyModule conv;
};
TORCH_MODULE(ConvOnly);

// A branch of a block or of its SPADE, with its slot (0..11 as in the widths).
struct InceptionBranchNorm {
  std::string name;  // relative to the block, e.g. "res_ops.0.0.norm", "spade.dw_ops.1.0.norm"
  int slot;
  std::shared_ptr<torch::nn::Module> module;
};

class InceptionSpadeImpl : public torch::nn::Module {
 public:
  // widths: spade res k1 k3 k5, spade dw k1 k3 k5.
  InceptionSpadeImpl(const std::string& norm, int64_t norm_nc, int64_t label_nc, const std::vector<int>& widths);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& segmap);
  std::vector<InceptionBranchNorm> first_norms(int slot_offset) const;

  torch::nn::AnyModule param_free_norm;
  torch::nn::ModuleList res_ops{nullptr}, dw_ops{nullptr};
  std::vector<torch::nn::Sequential> res_branches, dw_branches;
  std::vector<int> res_slots, dw_slots;
  int64_t norm_nc = 0;
};
TORCH_MODULE(InceptionSpade);

class SpadeInvertedResidualChannelsImpl : public torch::nn::Module {
 public:
  SpadeInvertedResidualChannelsImpl(int64_t fin, int64_t fout, int64_t label_nc, const std::string& norm,
                                    const std::vector<int>& widths);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& segmap);
  // The scored norms: the first norm of every present res / dw branch, then of the SPADE's.
  std::vector<InceptionBranchNorm> first_norms() const;

  torch::nn::ModuleList res_ops{nullptr}, dw_ops{nullptr};
  torch::nn::Sequential shortcut{nullptr};  // absent when fin == fout
  InceptionSpade spade{nullptr};
  std::vector<torch::nn::Sequential> res_branches, dw_branches;
  std::vector<int> res_slots, dw_slots;
};
TORCH_MODULE(SpadeInvertedResidualChannels);

// Taps: fc (after fc_norm), head_0, G_middle_1, up_1 (CAT's KA layers).
class InceptionSpadeGeneratorImpl : public GeneratorImpl {
 public:
  explicit InceptionSpadeGeneratorImpl(ArchConfig config);

  torch::Tensor forward(torch::Tensor x) override;
  GeneratorOutput forward_with_taps(torch::Tensor x) override;
  std::vector<std::string> tap_names() const override;
  // fc_norm (NormRole::trunk), then per block its first norms (NormRole::block, slots 0..11).
  std::vector<ScoredNorm> scored_norms() const override;

  torch::nn::AnyModule fc, fc_norm, conv_img;
  std::vector<SpadeInvertedResidualChannels> blocks;  // kSpadeBlocks order

 private:
  GeneratorOutput run(torch::Tensor x, bool with_taps);
};
TORCH_MODULE(InceptionSpadeGenerator);

// The unpruned widths of every block for `config` (ArchConfig::widths.blocks).
std::vector<std::vector<int>> inception_spade_default_widths(const ArchConfig& config);
// Counts by methods.md section 5 on a height x width input (0 x 0: parameters only);
// count_batchnorm = false leaves norms with running statistics out of the MACs, as CAT's
// profiler and pruning search do (nn::MacRules::cat_search).
SpadeCounts inception_spade_counts(const ArchConfig& config, int64_t height, int64_t width,
                                   bool count_batchnorm = true);

}  // namespace ganlite::nn
