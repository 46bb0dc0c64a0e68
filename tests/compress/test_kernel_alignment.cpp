#include <gtest/gtest.h>
#include <torch/torch.h>

#include "ganlite/compress/kernel_alignment.h"
#include "ganlite/util/error.h"

using ganlite::compress::kernel_alignment;

namespace {
torch::Tensor features(std::vector<int64_t> shape, uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randn(shape, torch::kFloat64);
}
}  // namespace

TEST(KernelAlignment, SelfAlignmentIsOne) {
  const auto x = features({4, 8, 5, 5}, 1);
  EXPECT_NEAR(kernel_alignment(x, x).item<double>(), 1.0, 1e-12);
}

TEST(KernelAlignment, MatchesTheDefinition) {
  const auto x = features({5, 3, 4, 4}, 2);
  const auto y = features({5, 7, 2, 2}, 3);  // widths may differ
  const auto xf = x.reshape({5, -1});
  const auto yf = y.reshape({5, -1});
  const auto gx = xf.mm(xf.t());
  const auto gy = yf.mm(yf.t());
  const double expected = ((gx * gy).sum() / (gx.norm() * gy.norm())).item<double>();
  EXPECT_NEAR(kernel_alignment(x, y).item<double>(), expected, 1e-12);
  EXPECT_GT(expected, 0.0);
  EXPECT_LT(expected, 1.0);
}

TEST(KernelAlignment, InvariantToScaling) {
  const auto x = features({4, 6, 3, 3}, 4);
  const auto y = features({4, 2, 3, 3}, 5);
  const double base = kernel_alignment(x, y).item<double>();
  EXPECT_NEAR(kernel_alignment(x * 37.5, y).item<double>(), base, 1e-12);
  EXPECT_NEAR(kernel_alignment(x, y * 1e-3).item<double>(), base, 1e-12);
}

TEST(KernelAlignment, InvariantToOrthogonalTransformsOfFeatures) {
  const auto x = features({6, 10}, 6);
  const auto y = features({6, 4}, 7);
  // Q from a QR decomposition is orthogonal: X Q Q^T X^T = X X^T.
  const auto q = std::get<0>(torch::linalg_qr(features({10, 10}, 8)));
  EXPECT_NEAR(kernel_alignment(x.mm(q), y).item<double>(), kernel_alignment(x, y).item<double>(), 1e-12);
}

TEST(KernelAlignment, LargeActivationsDoNotOverflowInFloat32) {
  const auto x = features({4, 64 * 64 * 64}, 9).to(torch::kFloat32) * 1e6;
  const auto value = kernel_alignment(x, x).item<double>();
  EXPECT_NEAR(value, 1.0, 1e-5);
}

TEST(KernelAlignment, GradientsMatchFiniteDifferences) {
  auto x = features({3, 5}, 10).requires_grad_(true);
  const auto y = features({3, 4}, 11);
  kernel_alignment(x, y).backward();
  const auto analytic = x.grad().clone();
  const double eps = 1e-6;
  auto xd = x.detach().clone();
  for (int64_t i = 0; i < xd.numel(); ++i) {
    auto plus = xd.clone();
    auto minus = xd.clone();
    plus.view(-1)[i] += eps;
    minus.view(-1)[i] -= eps;
    const double numeric =
        (kernel_alignment(plus, y).item<double>() - kernel_alignment(minus, y).item<double>()) / (2 * eps);
    EXPECT_NEAR(analytic.view(-1)[i].item<double>(), numeric, 1e-7) << "element " << i;
  }
}

TEST(KernelAlignment, RefusesBatchOfOne) {
  const auto x = features({1, 4}, 12);
  try {
    kernel_alignment(x, x);
    FAIL() << "expected UsageError";
  } catch (const ganlite::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("at least 2 samples"), std::string::npos);
  }
  EXPECT_THROW(kernel_alignment(features({2, 4}, 1), features({3, 4}, 2)), ganlite::UsageError);
}
