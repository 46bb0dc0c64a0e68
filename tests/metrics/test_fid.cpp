// FID and KID on feature matrices and statistics: definitions, closed forms for Gaussians,
// symmetry, singular covariances, errors; statistics files.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "ganlite/io/npz.h"
#include "ganlite/metrics/fid.h"
#include "ganlite/util/error.h"
#include "test_support.h"

using ganlite::Error;
using ganlite::testing::TempDir;
namespace metrics = ganlite::metrics;

namespace {

torch::Tensor random_spd(int64_t d, double floor = 0.1) {
  auto a = torch::randn({d, d}, torch::kFloat64);
  return torch::matmul(a, a.t()) / static_cast<double>(d) + floor * torch::eye(d, torch::kFloat64);
}

metrics::FeatureStats stats_of(torch::Tensor mu, torch::Tensor sigma) {
  metrics::FeatureStats s;
  s.mu = std::move(mu);
  s.sigma = std::move(sigma);
  return s;
}

}  // namespace

TEST(Fid, StatisticsAreMeanAndUnbiasedCovariance) {
  torch::manual_seed(0);
  const auto f = torch::randn({30, 4}, torch::kFloat32);
  const auto s = metrics::compute_statistics(f);
  EXPECT_EQ(s.count, 30);
  EXPECT_EQ(s.mu.scalar_type(), torch::kFloat64);
  const auto fd = f.to(torch::kFloat64);
  EXPECT_TRUE(torch::allclose(s.mu, fd.mean(0)));
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j) {
      double c = 0;
      for (int n = 0; n < 30; ++n) {
        c += (fd[n][i].item<double>() - s.mu[i].item<double>()) * (fd[n][j].item<double>() - s.mu[j].item<double>());
      }
      EXPECT_NEAR(s.sigma[i][j].item<double>(), c / 29.0, 1e-12);
    }
  }
  EXPECT_THROW(metrics::compute_statistics(torch::randn({1, 4})), Error);
  EXPECT_THROW(metrics::compute_statistics(torch::randn({4})), Error);
}

TEST(Fid, IdenticalSetsGiveZero) {
  torch::manual_seed(1);
  const auto s = metrics::compute_statistics(torch::randn({200, 16}) * 3 + 1);
  EXPECT_NEAR(metrics::frechet_distance(s, s), 0.0, 1e-6);
}

TEST(Fid, IsSymmetric) {
  torch::manual_seed(2);
  const auto a = metrics::compute_statistics(torch::randn({100, 12}));
  const auto b = metrics::compute_statistics(torch::randn({80, 12}) * 1.5 + 0.3);
  const double ab = metrics::frechet_distance(a, b);
  const double ba = metrics::frechet_distance(b, a);
  EXPECT_GT(ab, 0.1);
  EXPECT_NEAR(ab, ba, 1e-9 * std::abs(ab));
}

TEST(Fid, MatchesClosedFormForNonCommuting2x2Covariances) {
  // For 2x2 matrices with positive eigenvalues, tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)).
  const auto s1 = torch::tensor({{2.0, 0.7}, {0.7, 1.0}}, torch::kFloat64);
  const auto s2 = torch::tensor({{0.5, -0.2}, {-0.2, 3.0}}, torch::kFloat64);
  const auto mu1 = torch::tensor({0.0, 1.0}, torch::kFloat64);
  const auto mu2 = torch::tensor({2.0, -1.0}, torch::kFloat64);
  const double det1 = 2.0 * 1.0 - 0.7 * 0.7;
  const double det2 = 0.5 * 3.0 - 0.2 * 0.2;
  const double tr12 = torch::matmul(s1, s2).trace().item<double>();
  const double expected = 8.0 + 3.0 + 3.5 - 2.0 * std::sqrt(tr12 + 2.0 * std::sqrt(det1 * det2));
  EXPECT_NEAR(metrics::frechet_distance(stats_of(mu1, s1), stats_of(mu2, s2)), expected, 1e-10);
}

TEST(Fid, MatchesClosedFormForCommutingCovariances) {
  // Same eigenvectors Q: FID = |dmu|^2 + sum (sqrt(a_i) - sqrt(b_i))^2.
  torch::manual_seed(3);
  const int64_t d = 8;
  const auto q = std::get<0>(torch::linalg_qr(torch::randn({d, d}, torch::kFloat64)));
  const auto a = torch::rand({d}, torch::kFloat64) * 4 + 0.1;
  const auto b = torch::rand({d}, torch::kFloat64) * 4 + 0.1;
  const auto mu1 = torch::randn({d}, torch::kFloat64);
  const auto mu2 = torch::randn({d}, torch::kFloat64);
  const auto s1 = torch::matmul(q * a.unsqueeze(0), q.t());
  const auto s2 = torch::matmul(q * b.unsqueeze(0), q.t());
  const double expected =
      (mu1 - mu2).pow(2).sum().item<double>() + (a.sqrt() - b.sqrt()).pow(2).sum().item<double>();
  EXPECT_NEAR(metrics::frechet_distance(stats_of(mu1, s1), stats_of(mu2, s2)), expected, 1e-9);
}

TEST(Fid, SampledGaussiansAgreeWithTheirClosedForm) {
  torch::manual_seed(4);
  const int64_t d = 3;
  const int64_t n = 40000;
  const auto s1 = random_spd(d);
  const auto s2 = random_spd(d);
  const auto mu1 = torch::tensor({0.5, 0.0, -0.5}, torch::kFloat64);
  const auto mu2 = torch::tensor({-0.5, 0.25, 0.0}, torch::kFloat64);
  const auto x = mu1 + torch::matmul(torch::randn({n, d}, torch::kFloat64), torch::linalg_cholesky(s1).t());
  const auto y = mu2 + torch::matmul(torch::randn({n, d}, torch::kFloat64), torch::linalg_cholesky(s2).t());
  const double exact = metrics::frechet_distance(stats_of(mu1, s1), stats_of(mu2, s2));
  const double sampled = metrics::frechet_distance(metrics::compute_statistics(x), metrics::compute_statistics(y));
  EXPECT_GT(exact, 0.5);
  EXPECT_NEAR(sampled, exact, 0.03 * exact);
}

TEST(Fid, SingularCovariancesFromFewImagesStayFinite) {
  torch::manual_seed(5);
  const auto a = metrics::compute_statistics(torch::randn({5, 64}));  // rank 4 of 64
  const auto b = metrics::compute_statistics(torch::randn({6, 64}) + 0.5);
  const double self = metrics::frechet_distance(a, a);
  EXPECT_TRUE(std::isfinite(self));
  EXPECT_NEAR(self, 0.0, 1e-4);
  const double ab = metrics::frechet_distance(a, b);
  EXPECT_TRUE(std::isfinite(ab));
  EXPECT_GT(ab, 0.0);
  EXPECT_NEAR(ab, metrics::frechet_distance(b, a), 1e-6 * ab);
  // The SVD route (centred features kept) and the eigh route (statistics only, as from a file)
  // agree.
  ASSERT_TRUE(a.centered.defined());
  auto a_file = a;
  a_file.centered = torch::Tensor();
  a_file.count = 0;
  auto b_file = b;
  b_file.centered = torch::Tensor();
  b_file.count = 0;
  EXPECT_NEAR(metrics::frechet_distance(a_file, b_file), ab, 1e-8 * ab);
  EXPECT_NEAR(metrics::frechet_distance(a_file, a_file), 0.0, 1e-4);
}

TEST(Fid, RejectsMismatchedOrNonFiniteStatistics) {
  const auto a = stats_of(torch::zeros({3}, torch::kFloat64), torch::eye(3, torch::kFloat64));
  const auto b = stats_of(torch::zeros({4}, torch::kFloat64), torch::eye(4, torch::kFloat64));
  EXPECT_THROW(metrics::frechet_distance(a, b), Error);
  auto nan = a;
  nan.sigma = nan.sigma.clone();
  nan.sigma[0][0] = NAN;
  EXPECT_THROW(metrics::frechet_distance(a, nan), Error);
}

TEST(Fid, StatisticsFileRoundTripAndMissingArray) {
  TempDir dir;
  torch::manual_seed(6);
  const auto s = metrics::compute_statistics(torch::randn({20, 5}));
  metrics::save_statistics(dir / "real_stat.npz", s);
  const auto back = metrics::load_statistics(dir / "real_stat.npz");
  EXPECT_TRUE(torch::equal(back.mu, s.mu));
  EXPECT_TRUE(torch::equal(back.sigma, s.sigma));
  EXPECT_EQ(back.count, 0);
  ganlite::io::save_npz(dir / "no_sigma.npz", {{"mu", s.mu}});
  try {
    metrics::load_statistics(dir / "no_sigma.npz");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'sigma'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("no_sigma.npz"), std::string::npos) << e.what();
  }
}

namespace {

// Unbiased MMD^2 with the cubic polynomial kernel, written out with loops.
double mmd2_by_loops(const torch::Tensor& x, const torch::Tensor& y) {
  const int64_t m = x.size(0);
  const double d = static_cast<double>(x.size(1));
  auto k = [d](const torch::Tensor& a, const torch::Tensor& b) { return std::pow(a.dot(b).item<double>() / d + 1, 3); };
  double xx = 0, yy = 0, xy = 0;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < m; ++j) {
      if (i != j) {
        xx += k(x[i], x[j]);
        yy += k(y[i], y[j]);
      }
      xy += k(x[i], y[j]);
    }
  }
  const double mm = static_cast<double>(m);
  return (xx + yy) / (mm * (mm - 1)) - 2 * xy / (mm * mm);
}

}  // namespace

TEST(Kid, FullSubsetsEqualTheDirectFormulaWithZeroStd) {
  torch::manual_seed(7);
  const auto x = torch::randn({12, 5}, torch::kFloat64);
  const auto y = torch::randn({12, 5}, torch::kFloat64) + 0.7;
  // subset size = n: every subset is a permutation, so each value is the full-set MMD^2.
  const auto r = metrics::kernel_inception_distance(x, y, 10, 1000);
  EXPECT_EQ(r.subset_size, 12);
  EXPECT_EQ(r.subsets, 10);
  EXPECT_NEAR(r.mean, mmd2_by_loops(x, y), 1e-9);
  EXPECT_NEAR(r.std, 0.0, 1e-9);
}

TEST(Kid, SeededSubsetsAndOrdering) {
  torch::manual_seed(8);
  const auto x = torch::randn({60, 6}, torch::kFloat64);
  const auto y = torch::randn({50, 6}, torch::kFloat64) * 1.3 + 0.5;
  const auto same = torch::randn({60, 6}, torch::kFloat64);
  const auto a = metrics::kernel_inception_distance(x, y, 20, 20, 1);
  const auto b = metrics::kernel_inception_distance(x, y, 20, 20, 1);
  const auto c = metrics::kernel_inception_distance(x, y, 20, 20, 2);
  EXPECT_EQ(a.mean, b.mean);
  EXPECT_EQ(a.std, b.std);
  EXPECT_NE(a.mean, c.mean);
  EXPECT_GT(a.std, 0.0);
  const auto near = metrics::kernel_inception_distance(x, same, 20, 20, 1);
  EXPECT_GT(a.mean, near.mean + 3 * near.std);
  EXPECT_THROW(metrics::kernel_inception_distance(x.slice(0, 0, 1), y), Error);
  EXPECT_THROW(metrics::kernel_inception_distance(x, y.slice(1, 0, 3)), Error);
}

// CAT's protocol (snap-research/CAT, metric/kid_score.py, calculate_kid_given_paths): 100 subsets
// of 100 images. With sets of 5 and subsets of 3, a single subset's value must be the MMD^2 of
// one pair of 3-subsets (10 x 10 candidates, by the loops above), never the full sets' value.
TEST(Kid, SubsetSizeIsHonoured) {
  torch::manual_seed(9);
  const auto x = torch::randn({5, 4}, torch::kFloat64);
  const auto y = torch::randn({5, 4}, torch::kFloat64) * 1.5 + 0.4;
  std::vector<torch::Tensor> xs, ys;
  for (int64_t i = 0; i < 5; ++i) {
    for (int64_t j = i + 1; j < 5; ++j) {
      for (int64_t k = j + 1; k < 5; ++k) {
        const auto idx = torch::tensor({i, j, k}, torch::kInt64);
        xs.push_back(x.index_select(0, idx));
        ys.push_back(y.index_select(0, idx));
      }
    }
  }
  std::vector<double> candidates;
  for (const auto& a : xs) {
    for (const auto& b : ys) candidates.push_back(mmd2_by_loops(a, b));
  }
  const double full = mmd2_by_loops(x, y);
  // Double-precision sums of a few dozen O(10) kernel values: 1e-12 is a thousand roundings.
  const double tol = 1e-12 * (1 + std::abs(full));
  for (uint64_t seed = 0; seed < 8; ++seed) {
    const auto r = metrics::kernel_inception_distance(x, y, 1, 3, seed);
    EXPECT_EQ(r.subset_size, 3);
    const bool is_candidate = std::any_of(candidates.begin(), candidates.end(),
                                          [&](double c) { return std::abs(c - r.mean) <= tol; });
    EXPECT_TRUE(is_candidate) << "seed " << seed << ": " << r.mean;
    EXPECT_GT(std::abs(r.mean - full), 1e3 * tol);
  }
  // The cap: a subset size above the smaller set uses the whole of it.
  EXPECT_EQ(metrics::kernel_inception_distance(x, y.slice(0, 0, 4), 2, 100).subset_size, 4);
  // CAT's 100 x 100 on 150 images each.
  const auto big = metrics::kernel_inception_distance(torch::randn({150, 4}, torch::kFloat64),
                                                      torch::randn({150, 4}, torch::kFloat64), 100, 100);
  EXPECT_EQ(big.subset_size, 100);
  EXPECT_EQ(big.subsets, 100);
}
