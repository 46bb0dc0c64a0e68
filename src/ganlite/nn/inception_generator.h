// CAT's inception-residual generator (methods.md 1.3): Sequentials `down_sampling`, `features`
// (the InvertedResidualChannels blocks) and `up_sampling`, with the public code's keys.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>

#include <array>
#include <string>
#include <vector>

#include "ganlite/nn/generator.h"

namespace ganlite::nn {

// The branch kernel sizes, in the public code's order (res_ops and dw_ops are both ordered so).
constexpr std::array<int, 3> kInceptionKernels{1, 3, 5};

// One block over `dim` channels. widths = {res_k1, res_k3, res_k5, dw_k1, dw_k3, dw_k5}:
//   res_ops.j = [pad, Sequential(conv kxk dim->mid, norm, ReLU), Dropout, pad, conv kxk mid->dim]
//   dw_ops.j  = [Sequential(conv 1x1 dim->mid, norm, ReLU), pad, Sequential(depthwise conv kxk, norm,
//               ReLU), Dropout, conv 1x1 mid->dim]
// A width-0 branch is absent (later indices shift); output x + pw_bn(sum of branches), or x itself
// when the block has no branch.
class InvertedResidualChannelsImpl : public torch::nn::Module {
 public:
  InvertedResidualChannelsImpl(int64_t dim, const std::vector<int>& widths, const std::string& padding,
                               const std::string& norm, double dropout, bool use_bias);
  torch::Tensor forward(torch::Tensor x);

  // The first norm of each present branch: (name relative to this block, slot 0..5, module).
  struct BranchNorm {
    std::string name;
    int slot;
    std::shared_ptr<torch::nn::Module> module;
  };
  std::vector<BranchNorm> first_norms() const;

  torch::nn::ModuleList res_ops{nullptr};
  torch::nn::ModuleList dw_ops{nullptr};
  torch::nn::AnyModule pw_bn;

 private:
  std::vector<torch::nn::Sequential> res_branches_, dw_branches_;
  std::vector<int> res_slots_, dw_slots_;
};
TORCH_MODULE(InvertedResidualChannels);

// Taps: down_sampling.9 (the ReLU after the last down stage) and blocks n/3, 2n/3, n.
class InceptionGeneratorImpl : public GeneratorImpl {
 public:
  explicit InceptionGeneratorImpl(ArchConfig config);

  torch::Tensor forward(torch::Tensor x) override;
  GeneratorOutput forward_with_taps(torch::Tensor x) override;
  std::vector<std::string> tap_names() const override;
  // down_sampling.2 (stem), .5 (down1), .8 (trunk mask), features.i.res_ops.j.1.1,
  // features.i.dw_ops.j.0.1, up_sampling.1 (up1), up_sampling.4 (up2).
  std::vector<ScoredNorm> scored_norms() const override;

  torch::nn::Sequential down_sampling{nullptr};
  torch::nn::Sequential features{nullptr};
  torch::nn::Sequential up_sampling{nullptr};

 private:
  std::vector<size_t> tap_ends() const;
  std::vector<InvertedResidualChannels> blocks_;
};
TORCH_MODULE(InceptionGenerator);

}  // namespace ganlite::nn
