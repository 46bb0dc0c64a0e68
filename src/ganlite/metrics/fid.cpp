#include "ganlite/metrics/fid.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "ganlite/io/npz.h"
#include "ganlite/util/error.h"

namespace ganlite::metrics {

namespace {

torch::Tensor features_2d(const torch::Tensor& features, const char* what) {
  if (features.dim() != 2) {
    throw Error(std::string(what) + ": features must be [N, D], got " + std::to_string(features.dim()) + " dims");
  }
  if (!features.is_floating_point()) throw Error(std::string(what) + ": features must be floating point");
  return features.detach().to(torch::kFloat64);
}

// tr sqrt(S1 S2) through one eigendecomposition S1 = V diag(l) V^T: the non-zero eigenvalues of
// S1 S2 are those of diag(sqrt l) V^T S2 V diag(sqrt l) (AB and BA share them), restricted to
// the numerical range of S1 (l above numpy's matrix_rank tolerance, l_max * D * machine eps).
// With fewer images than dimensions (120 horses vs 2048 features) that range is small, so the
// second decomposition is tiny; eigenvalues in the null space are rounding noise and are dropped.
// When S1 comes with its centred features A (N <= D), S1 = A^T A / (N - 1) and the SVD of the
// small A gives the same decomposition without a D x D eigh.
double trace_sqrt_product(const torch::Tensor& s1, const torch::Tensor& s2, const torch::Tensor& centered1) {
  torch::Tensor values;
  torch::Tensor vectors;
  if (centered1.defined()) {
    auto [u, singular, vh] = torch::linalg_svd(centered1, /*full_matrices=*/false);
    values = singular.pow(2) / static_cast<double>(centered1.size(0) - 1);
    vectors = vh.transpose(0, 1);
  } else {
    std::tie(values, vectors) = torch::linalg_eigh(s1, "L");
  }
  const double tolerance = std::max(values.max().item<double>(), 0.0) * static_cast<double>(s1.size(0)) *
                           std::numeric_limits<double>::epsilon();
  const auto keep = torch::nonzero(values > tolerance).flatten();
  if (keep.numel() == 0) return 0.0;  // S1 = 0
  const auto v = vectors.index_select(1, keep);
  const auto root = values.index_select(0, keep).sqrt();
  auto m = torch::matmul(torch::matmul(v.transpose(0, 1), s2), v) * root.unsqueeze(0) * root.unsqueeze(1);
  m = (m + m.transpose(0, 1)) / 2;  // symmetric up to rounding; make it exact for eigvalsh
  return torch::linalg_eigvalsh(m, "L").clamp_min(0).sqrt().sum().item<double>();
}

// "statistics real.npz" for loaded statistics, `fallback` for computed ones.
std::string statistics_name(const FeatureStats& stats, const char* fallback) {
  return stats.source.empty() ? std::string(fallback) : "statistics " + stats.source;
}

}  // namespace

FeatureStats compute_statistics(const torch::Tensor& features) {
  const auto f = features_2d(features, "statistics");
  if (f.size(0) < 2) throw Error("statistics need at least 2 images, got " + std::to_string(f.size(0)));
  FeatureStats stats;
  stats.mu = f.mean(0);
  const auto centered = f - stats.mu;
  stats.sigma = torch::matmul(centered.transpose(0, 1), centered) / static_cast<double>(f.size(0) - 1);
  stats.mu = stats.mu.cpu();
  stats.sigma = stats.sigma.cpu();
  stats.count = f.size(0);
  if (f.size(0) <= f.size(1)) stats.centered = centered.cpu();
  return stats;
}

FeatureStats load_statistics(const std::filesystem::path& path) {
  const auto arrays = io::load_npz(path);
  FeatureStats stats;
  for (const char* key : {"mu", "sigma"}) {
    const auto it = arrays.find(key);
    if (it == arrays.end()) throw Error(path.string() + ": no array '" + key + "' (FID statistics need mu and sigma)");
    if (!it->second.is_floating_point()) throw Error(path.string() + ": array '" + key + "' is not floating point");
    (std::string(key) == "mu" ? stats.mu : stats.sigma) = it->second.to(torch::kFloat64);
  }
  if (stats.mu.dim() != 1 || stats.sigma.dim() != 2 || stats.sigma.size(0) != stats.mu.size(0) ||
      stats.sigma.size(1) != stats.mu.size(0)) {
    throw Error(path.string() + ": mu must be [D] and sigma [D, D], got " + c10::str(stats.mu.sizes()) + " and " +
                c10::str(stats.sigma.sizes()));
  }
  if (stats.mu.numel() == 0) throw Error(path.string() + ": mu and sigma are empty");
  for (const char* key : {"mu", "sigma"}) {
    const auto& t = std::string(key) == "mu" ? stats.mu : stats.sigma;
    if (!torch::isfinite(t).all().item<bool>()) throw Error(path.string() + ": array '" + key + "' holds NaN or Inf");
  }
  stats.source = path.string();
  return stats;
}

void save_statistics(const std::filesystem::path& path, const FeatureStats& stats) {
  io::save_npz(path, {{"mu", stats.mu.to(torch::kFloat64)}, {"sigma", stats.sigma.to(torch::kFloat64)}});
}

double frechet_distance(const FeatureStats& a, const FeatureStats& b, double eps) {
  const auto mu1 = a.mu.to(torch::kCPU, torch::kFloat64).flatten();
  const auto mu2 = b.mu.to(torch::kCPU, torch::kFloat64).flatten();
  const auto s1 = a.sigma.to(torch::kCPU, torch::kFloat64);
  const auto s2 = b.sigma.to(torch::kCPU, torch::kFloat64);
  const int64_t d = mu1.size(0);
  const std::string name_a = statistics_name(a, "the first statistics");
  const std::string name_b = statistics_name(b, "the second statistics");
  if (mu2.size(0) != d || s1.dim() != 2 || s2.dim() != 2 || s1.size(0) != d || s1.size(1) != d ||
      s2.size(0) != d || s2.size(1) != d) {
    throw Error("frechet distance: " + name_a + " (mu " + std::to_string(d) + ") and " + name_b + " (mu " +
                std::to_string(mu2.size(0)) + ") have different dimensions");
  }
  if (!torch::isfinite(mu1).all().item<bool>() || !torch::isfinite(s1).all().item<bool>()) {
    throw Error("frechet distance: " + name_a + " contain NaN or Inf");
  }
  if (!torch::isfinite(mu2).all().item<bool>() || !torch::isfinite(s2).all().item<bool>()) {
    throw Error("frechet distance: " + name_b + " contain NaN or Inf");
  }
  // tr sqrt(S1 S2) = tr sqrt(S2 S1): decompose the covariance behind fewer images (lower rank).
  const bool swap = b.count > 0 && (a.count == 0 || b.count < a.count);
  const auto& first = swap ? s2 : s1;
  const auto& second = swap ? s1 : s2;
  torch::Tensor factor = (swap ? b : a).centered;
  if (factor.defined() && (factor.dim() != 2 || factor.size(1) != d)) factor = torch::Tensor();
  if (factor.defined()) factor = factor.to(torch::kCPU, torch::kFloat64);
  double tr_covmean = 0;
  try {
    tr_covmean = trace_sqrt_product(first, second, factor);
  } catch (const c10::Error&) {
    tr_covmean = NAN;  // eigh did not converge: take the fallback below
  }
  if (!std::isfinite(tr_covmean)) {
    const auto offset = torch::eye(d, torch::kFloat64) * eps;
    tr_covmean = trace_sqrt_product(first + offset, second + offset, torch::Tensor());
    if (!std::isfinite(tr_covmean)) throw Error("frechet distance: covariance square root is not finite");
  }
  const double diff = (mu1 - mu2).pow(2).sum().item<double>();
  return diff + s1.trace().item<double>() + s2.trace().item<double>() - 2.0 * tr_covmean;
}

KidResult kernel_inception_distance(const torch::Tensor& features_a, const torch::Tensor& features_b, int64_t subsets,
                                    int64_t max_subset_size, uint64_t seed) {
  const auto a = features_2d(features_a, "kid");
  const auto b = features_2d(features_b, "kid").to(a.device());
  if (a.size(1) != b.size(1)) {
    throw Error("kid: feature dimensions differ (" + std::to_string(a.size(1)) + " vs " + std::to_string(b.size(1)) + ")");
  }
  if (subsets < 1) throw UsageError("kid: subsets must be >= 1, got " + std::to_string(subsets));
  const int64_t m = std::min({max_subset_size, a.size(0), b.size(0)});
  if (m < 2) throw Error("kid needs at least 2 images in each set, got " + std::to_string(a.size(0)) + " and " +
                         std::to_string(b.size(0)));
  const double d = static_cast<double>(a.size(1));
  std::mt19937_64 rng(seed);
  // First m of a partial Fisher-Yates shuffle: a uniform subset without replacement.
  auto pick = [&](int64_t n) {
    std::vector<int64_t> idx(static_cast<size_t>(n));
    std::iota(idx.begin(), idx.end(), 0);
    for (int64_t i = 0; i < m; ++i) {
      std::uniform_int_distribution<int64_t> dist(i, n - 1);
      std::swap(idx[static_cast<size_t>(i)], idx[static_cast<size_t>(dist(rng))]);
    }
    idx.resize(static_cast<size_t>(m));
    return torch::tensor(idx, torch::kInt64).to(a.device());
  };
  auto kernel = [d](const torch::Tensor& x, const torch::Tensor& y) {
    return (torch::matmul(x, y.transpose(0, 1)) / d + 1.0).pow(3);
  };
  std::vector<double> values;
  values.reserve(static_cast<size_t>(subsets));
  const double mm = static_cast<double>(m);
  for (int64_t s = 0; s < subsets; ++s) {
    const auto x = a.index_select(0, pick(a.size(0)));
    const auto y = b.index_select(0, pick(b.size(0)));
    const auto kxx = kernel(x, x);
    const auto kyy = kernel(y, y);
    const auto kxy = kernel(x, y);
    const double xx = (kxx.sum() - kxx.diagonal().sum()).item<double>();
    const double yy = (kyy.sum() - kyy.diagonal().sum()).item<double>();
    const double xy = kxy.sum().item<double>();
    values.push_back((xx + yy) / (mm * (mm - 1)) - 2.0 * xy / (mm * mm));
  }
  KidResult r;
  r.subsets = subsets;
  r.subset_size = m;
  r.mean = std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
  double var = 0;
  for (double v : values) var += (v - r.mean) * (v - r.mean);
  r.std = std::sqrt(var / static_cast<double>(values.size()));
  return r;
}

}  // namespace ganlite::metrics
