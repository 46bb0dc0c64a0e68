// nn::fold_affine_into_conv with nn::running_norm_affine, the one BatchNorm folding behind the
// inference path and the ONNX exporter: a folded conv equals conv + eval-mode norm within the
// bound of two fp32 evaluations (tests/tolerance.h).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <stdexcept>

#include "ganlite/nn/fold_norm.h"
#include "tolerance.h"

namespace {

namespace nn = ganlite::nn;
namespace tol = ganlite::testing;

// A BatchNorm in eval mode whose running statistics and affine parameters are far from the
// identity, so an unfolded or wrongly folded conv is off by O(1).
torch::nn::BatchNorm2d random_batch_norm(int64_t channels) {
  torch::nn::BatchNorm2d bn(channels);
  torch::NoGradGuard no_grad;
  bn->running_mean.uniform_(-1, 1);
  bn->running_var.uniform_(0.25, 4);
  bn->weight.uniform_(0.5, 2);
  bn->bias.uniform_(-1, 1);
  bn->eval();
  return bn;
}

// A conv's weight and bias (may be undefined) with `bn` folded in, in fp32, and the bound on
// |folded conv - conv then bn|. Both sides sum the same addends (the conv's K products, scaled,
// then bias, mean and shift terms) in fp32 in different orders: within eps32 * (K + 4) times
// the sum of their magnitudes (Higham 3.1; the 4 covers the norm's subtract, divide, multiply,
// add). `abs_conv(w)` runs the conv on |x| with the weights given.
struct FoldedForTest {
  torch::Tensor weight, bias;
  double bound = 0;
};
FoldedForTest fold_for_test(const torch::Tensor& weight, const torch::Tensor& bias, const torch::nn::BatchNorm2d& bn,
                            int64_t out_dim, int64_t k,
                            const std::function<torch::Tensor(const torch::Tensor&)>& abs_conv) {
  const auto affine = nn::running_norm_affine(*bn);
  if (!affine) throw std::runtime_error("running_norm_affine refused an eval-mode BatchNorm with statistics");
  const auto folded = nn::fold_affine_into_conv(weight, bias, *affine, out_dim);
  FoldedForTest out{folded.weight.to(torch::kFloat), folded.bias.to(torch::kFloat)};
  auto addends = bn->running_mean.abs();
  if (bias.defined()) addends = addends + bias.abs();
  addends = addends * affine->scale.abs().to(torch::kFloat) + bn->bias.abs();
  const auto magnitude = abs_conv(out.weight.abs()) + addends.view({1, -1, 1, 1});
  out.bound = tol::fp32_network_tolerance(k + 4, tol::max_abs(magnitude));
  return out;
}

TEST(FoldNorm, ConvThenBatchNormEqualsFoldedConv) {
  torch::manual_seed(3);
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(8, 6, 3).padding(1).bias(true));
  auto bn = random_batch_norm(6);
  const auto x = torch::randn({2, 8, 9, 7});
  torch::NoGradGuard no_grad;
  const auto expected = bn->forward(conv->forward(x));
  const auto folded = fold_for_test(conv->weight, conv->bias, bn, 0, 8 * 9,
                                    [&](const torch::Tensor& w) { return torch::conv2d(x.abs(), w, {}, 1, 1); });
  tol::expect_close(torch::conv2d(x, folded.weight, folded.bias, 1, 1), expected, folded.bound, "conv+bn folded");
  EXPECT_GT(tol::max_abs(conv->forward(x) - expected), 0.1);  // the norm is far from the identity
}

TEST(FoldNorm, TransposedConvFoldsAlongItsOutputChannels) {
  torch::manual_seed(4);
  torch::nn::ConvTranspose2d convt(
      torch::nn::ConvTranspose2dOptions(6, 5, 3).stride(2).padding(1).output_padding(1).bias(false));
  auto bn = random_batch_norm(5);
  const auto x = torch::randn({1, 6, 5, 4});
  torch::NoGradGuard no_grad;
  const auto expected = bn->forward(convt->forward(x));
  const auto folded = fold_for_test(convt->weight, torch::Tensor(), bn, 1, 6 * 9, [&](const torch::Tensor& w) {
    return torch::conv_transpose2d(x.abs(), w, {}, 2, 1, 1);
  });
  tol::expect_close(torch::conv_transpose2d(x, folded.weight, folded.bias, 2, 1, 1), expected, folded.bound,
                    "convT+bn folded");
}

TEST(FoldNorm, OnlyNormsWithRunningStatisticsFold) {
  torch::nn::InstanceNorm2d tracked(torch::nn::InstanceNorm2dOptions(4).affine(true).track_running_stats(true));
  torch::nn::InstanceNorm2d per_image(torch::nn::InstanceNorm2dOptions(4));
  torch::nn::BatchNorm2d no_stats(torch::nn::BatchNorm2dOptions(4).track_running_stats(false));
  torch::nn::ReLU relu;
  EXPECT_TRUE(nn::running_norm_affine(*tracked).has_value());
  EXPECT_FALSE(nn::running_norm_affine(*per_image).has_value());
  EXPECT_FALSE(nn::running_norm_affine(*no_stats).has_value());
  EXPECT_FALSE(nn::running_norm_affine(*relu).has_value());
}

}  // namespace
