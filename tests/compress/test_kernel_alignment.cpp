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

// CAT's multi-GPU KA (snap-research/CAT, distillers/inception_distiller.py, calc_distill_loss):
// DataParallel scatters the batch with torch.chunk over the GPUs, each replica's hooks record its
// chunk's taps, and the loss is the sum of the replicas' -KA. Sizes by torch.chunk's rule.
TEST(KernelAlignmentChunks, SplitAsDataParallelScattersTheBatch) {
  using ganlite::compress::data_parallel_chunk_sizes;
  using Sizes = std::vector<int64_t>;
  EXPECT_EQ(data_parallel_chunk_sizes(80, 4), (Sizes{20, 20, 20, 20}));  // CAT's batch 80 on 4 GPUs
  EXPECT_EQ(data_parallel_chunk_sizes(27, 4), (Sizes{7, 7, 7, 6}));      // an epoch's last batch
  EXPECT_EQ(data_parallel_chunk_sizes(10, 4), (Sizes{3, 3, 3, 1}));
  EXPECT_EQ(data_parallel_chunk_sizes(5, 4), (Sizes{2, 2, 1}));          // fewer replicas than GPUs
  EXPECT_EQ(data_parallel_chunk_sizes(16, 2), (Sizes{8, 8}));            // CAT's GauGAN: 16 on 2 GPUs
  EXPECT_EQ(data_parallel_chunk_sizes(7, 1), (Sizes{7}));
  EXPECT_THROW(data_parallel_chunk_sizes(7, 0), ganlite::UsageError);
}

namespace {

// CAT's utils/common.py KA(X, Y) in float64: no normalisation, Gram matrices of the raw features.
double cat_ka_in_double(const torch::Tensor& x, const torch::Tensor& y) {
  const auto xf = x.to(torch::kFloat64).reshape({x.size(0), -1});
  const auto yf = y.to(torch::kFloat64).reshape({y.size(0), -1});
  const auto gx = xf.mm(xf.t());
  const auto gy = yf.mm(yf.t());
  return ((gx * gy).sum() / ((gx * gx).sum() * (gy * gy).sum()).sqrt()).item<double>();
}

// fp32 error of one KA over n samples of D features (both sides): the normalisation and each Gram
// entry are sums of D products, within D u of the scale |x||y| (Cauchy-Schwarz bounds the entries'
// absolute sums by it); the three sums of n^2 Gram products within n^2 u of |G_x||G_y|; KA is a
// ratio of O(1) values with respect to that scale, so each relative error enters at most twice.
// u = 2^-24 is half of eps32; this takes eps32 and a factor 4 of room.
double ka_fp32_bound(int64_t n, int64_t features) {
  return 4.0 * 0x1p-23 * static_cast<double>(2 * features + 3 * n * n);
}

}  // namespace

TEST(KernelAlignmentChunks, SumOfThePerChunkAlignmentsOfCatsFormulaInDouble) {
  using ganlite::compress::chunked_kernel_alignment;
  struct Case {
    int64_t n, parts;
    std::vector<int64_t> sizes;  // torch.chunk's, written out
  };
  for (const Case& c : {Case{27, 4, {7, 7, 7, 6}}, Case{10, 4, {3, 3, 3, 1}}, Case{40, 2, {20, 20}}}) {
    SCOPED_TRACE("batch " + std::to_string(c.n) + ", parts " + std::to_string(c.parts));
    // Post-ReLU-like features (non-negative, as CAT's taps), widths differing between the sides.
    const auto s = features({c.n, 3, 4, 4}, 20 + c.n).relu().to(torch::kFloat32);
    const auto t = features({c.n, 5, 2, 3}, 40 + c.n).relu().to(torch::kFloat32);
    double expected = 0, bound = 0;
    int64_t start = 0;
    for (const int64_t size : c.sizes) {
      // A one-sample chunk: CAT's KA of a 1x1 Gram matrix is g^2 / sqrt(g^2 g^2) = 1.
      expected += size < 2 ? 1.0 : cat_ka_in_double(s.narrow(0, start, size), t.narrow(0, start, size));
      bound += ka_fp32_bound(size, s[0].numel() + t[0].numel());
      start += size;
    }
    const double got = chunked_kernel_alignment(s, t, c.parts).item<double>();
    EXPECT_NEAR(got, expected, bound);
    // One KA over the whole batch is another objective: the test tells them apart.
    EXPECT_GT(std::abs(cat_ka_in_double(s, t) - expected), 100 * bound);
  }
}

TEST(KernelAlignmentChunks, OnePartIsTheWholeBatchBitForBitAndGradientsStayInTheirChunk) {
  using ganlite::compress::chunked_kernel_alignment;
  const auto s = features({6, 4, 3, 3}, 30).to(torch::kFloat32);
  const auto t = features({6, 2, 3, 3}, 31).to(torch::kFloat32);
  EXPECT_TRUE(torch::equal(chunked_kernel_alignment(s, t, 1), kernel_alignment(s, t)));

  // parts 4 of 6: chunks 2, 2, 2; each chunk's KA depends on its own samples only.
  auto x = s.clone().requires_grad_(true);
  chunked_kernel_alignment(x, t, 4).backward();
  auto first = s.narrow(0, 0, 2).clone().requires_grad_(true);
  kernel_alignment(first, t.narrow(0, 0, 2)).backward();
  EXPECT_TRUE(torch::allclose(x.grad().narrow(0, 0, 2), first.grad(), 1e-5, 1e-7));
  // A one-sample chunk (parts 4 of 7: 2, 2, 2, 1) adds the constant 1 and no gradient.
  auto y = features({7, 4, 3, 3}, 32).to(torch::kFloat32).requires_grad_(true);
  const auto ty = features({7, 2, 3, 3}, 33).to(torch::kFloat32);
  chunked_kernel_alignment(y, ty, 4).backward();
  EXPECT_TRUE(torch::equal(y.grad().narrow(0, 6, 1), torch::zeros({1, 4, 3, 3})));
  EXPECT_GT(y.grad().narrow(0, 0, 6).abs().max().item<double>(), 0.0);
}
