#include "ganlite/metrics/fid.h"

#include <torch/torch.h>

#include <cmath>
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

// sqrt of a symmetric PSD matrix and the clamped eigenvalues behind it.
torch::Tensor sqrt_psd(const torch::Tensor& s) {
  auto [values, vectors] = torch::linalg::eigh(s, "L");
  return torch::matmul(vectors * values.clamp_min(0).sqrt().unsqueeze(0), vectors.transpose(0, 1));
}

double trace_sqrt_product(const torch::Tensor& s1, const torch::Tensor& s2) {
  const auto root1 = sqrt_psd(s1);
  auto m = torch::matmul(torch::matmul(root1, s2), root1);
  m = (m + m.transpose(0, 1)) / 2;  // symmetric up to rounding; make it exact for eigh
  const auto values = torch::linalg::eigvalsh(m, "L");
  return values.clamp_min(0).sqrt().sum().item<double>();
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
    throw Error(path.string() + ": mu must be [D] and sigma [D, D]");
  }
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
  if (mu2.size(0) != d || s1.dim() != 2 || s2.dim() != 2 || s1.size(0) != d || s1.size(1) != d ||
      s2.size(0) != d || s2.size(1) != d) {
    throw Error("frechet distance: statistics have different dimensions (mu " + std::to_string(d) + " vs " +
                std::to_string(mu2.size(0)) + ")");
  }
  for (const auto* t : {&mu1, &mu2, &s1, &s2}) {
    if (!torch::isfinite(*t).all().item<bool>()) throw Error("frechet distance: statistics contain NaN or Inf");
  }
  double tr_covmean = 0;
  try {
    tr_covmean = trace_sqrt_product(s1, s2);
  } catch (const c10::Error&) {
    tr_covmean = NAN;  // eigh did not converge: take the fallback below
  }
  if (!std::isfinite(tr_covmean)) {
    const auto offset = torch::eye(d, torch::kFloat64) * eps;
    tr_covmean = trace_sqrt_product(s1 + offset, s2 + offset);
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
