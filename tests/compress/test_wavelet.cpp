#include <gtest/gtest.h>
#include <torch/torch.h>

#include "ganlite/compress/wavelet.h"
#include "ganlite/util/error.h"

using namespace ganlite::compress;

TEST(HaarWavelet, KnownCoefficientsOfAHandMade4x4Image) {
  // One channel:
  //  1 2 | 3 4
  //  5 6 | 7 8
  //  ----+----
  //  0 0 | 2 2
  //  4 4 | 2 2
  const auto img = torch::tensor({1., 2., 3., 4., 5., 6., 7., 8., 0., 0., 2., 2., 4., 4., 2., 2.},
                                 torch::kFloat64)
                       .view({1, 1, 4, 4});
  const auto p = haar_dwt(img.to(torch::kFloat32), 1);
  // Block (a b; c d): LL = (a+b+c+d)/2, LH = (a+b-c-d)/2, HL = (a-b+c-d)/2, HH = (a-b-c+d)/2.
  const auto expect = [](const torch::Tensor& t, std::vector<float> v) {
    const auto e = torch::tensor(v).view({1, 1, 2, 2});
    EXPECT_TRUE(torch::allclose(t, e, 1e-6, 1e-6)) << t << "\nexpected\n" << e;
  };
  expect(p.ll, {7, 11, 4, 4});
  expect(p.levels[0].lh, {-4, -4, -4, 0});
  expect(p.levels[0].hl, {-1, -1, 0, 0});
  expect(p.levels[0].hh, {0, 0, 0, 0});
}

TEST(HaarWavelet, PerfectReconstructionAtSeveralLevels) {
  torch::manual_seed(0);
  for (const auto& shape : std::vector<std::vector<int64_t>>{{2, 3, 64, 64}, {1, 3, 37, 50}, {3, 1, 16, 8}}) {
    const auto x = torch::randn(shape, torch::kFloat64);
    for (int levels : {1, 2, 3}) {
      const auto y = haar_idwt(haar_dwt(x, levels));
      ASSERT_EQ(y.sizes(), x.sizes());
      EXPECT_LT((y - x).abs().max().item<double>(), 1e-12) << "levels " << levels;
    }
  }
}

TEST(HaarWavelet, OrthonormalTransformPreservesEnergy) {
  torch::manual_seed(1);
  const auto x = torch::randn({2, 3, 32, 32}, torch::kFloat64);
  const auto p = haar_dwt(x, 4);
  double energy = p.ll.pow(2).sum().item<double>();
  for (const auto& l : p.levels) {
    energy += l.lh.pow(2).sum().item<double>() + l.hl.pow(2).sum().item<double>() + l.hh.pow(2).sum().item<double>();
  }
  EXPECT_NEAR(energy, x.pow(2).sum().item<double>(), 1e-9);
  EXPECT_EQ(p.levels.size(), 4u);
  EXPECT_EQ(p.ll.size(2), 2);
}

TEST(HaarWavelet, DetailLossIgnoresTheLowBand) {
  torch::manual_seed(2);
  const auto a = torch::randn({2, 3, 16, 16});
  // A constant offset lives only in LL: the detail loss must not see it.
  EXPECT_NEAR(wavelet_detail_loss(a + 0.7, a, 3, "l1").item<double>(), 0.0, 1e-6);
  EXPECT_NEAR(wavelet_detail_loss(a + 0.7, a, 3, "mse").item<double>(), 0.0, 1e-6);
  const auto b = torch::randn({2, 3, 16, 16});
  EXPECT_GT(wavelet_detail_loss(b, a, 3, "l1").item<double>(), 0.1);
  EXPECT_THROW(wavelet_detail_loss(a, a, 1, "l2"), ganlite::UsageError);
}

TEST(HaarWavelet, DetailLossGradientFlowsToTheStudent) {
  torch::manual_seed(3);
  auto s = torch::randn({2, 3, 8, 8}).requires_grad_(true);
  const auto t = torch::randn({2, 3, 8, 8});
  wavelet_detail_loss(s, t, 2, "mse").backward();
  ASSERT_TRUE(s.grad().defined());
  EXPECT_GT(s.grad().abs().sum().item<double>(), 0.0);
}
