// Frechet Inception Distance and Kernel Inception Distance on feature matrices.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <string>

namespace ganlite::metrics {

// Gaussian statistics of features: mean [D] and covariance [D, D] over N - 1, float64 on CPU.
struct FeatureStats {
  torch::Tensor mu;
  torch::Tensor sigma;
  int64_t count = 0;  // images behind the statistics; 0 when loaded from a file
  std::string source;  // the file they were loaded from, named in errors; empty when computed
  // Centred features [N, D] when N <= D (not saved): sigma's decomposition then comes from a
  // small SVD, which makes FID of a 120-image test set cheap and exact.
  torch::Tensor centered;
};

// features [N, D] (any device, any float dtype), N >= 2.
FeatureStats compute_statistics(const torch::Tensor& features);

// .npz with float64 arrays `mu` and `sigma` (the gan-compression / pytorch-fid format). Throws
// Error naming the file when an array is missing, misshapen or not finite.
FeatureStats load_statistics(const std::filesystem::path& path);
void save_statistics(const std::filesystem::path& path, const FeatureStats& stats);

// |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr sqrt(S1 S2), all in float64.
//
// tr sqrt(S1 S2) is the sum of the square roots of the eigenvalues of S1 S2. With S1 =
// V diag(l) V^T (eigh), S1 S2 shares its non-zero eigenvalues with the symmetric PSD
// diag(sqrt l) V^T S2 V diag(sqrt l) (AB and BA share them); V is restricted to S1's numerical
// range (numpy's matrix_rank tolerance), which makes the second eigh small when S1 comes from
// fewer images than dimensions, and rounding-level negative eigenvalues are clamped to 0. The
// covariance with the smaller known `count` is the one decomposed (the result is symmetric),
// through the SVD of its `centered` features when they are there.
// pytorch-fid's scipy.linalg.sqrtm of the non-symmetric product can fail for singular
// covariances, which it answers by adding eps * I to both; this route is exact there and needs
// no offset. The offset is kept as the same fallback, with the same eps, for when the
// decomposition itself fails or gives non-finite values.
// Throws Error on mismatched shapes or non-finite statistics, naming the statistics' files.
double frechet_distance(const FeatureStats& a, const FeatureStats& b, double eps = 1e-6);

struct KidResult {
  double mean = 0;
  double std = 0;  // population std over subsets, as torch-fidelity reports it
  int64_t subsets = 0;
  int64_t subset_size = 0;
};

// KID: unbiased MMD^2 with the polynomial kernel k(x, y) = (x.y / d + 1)^3, averaged over
// `subsets` random subsets (without replacement) of min(max_subset_size, N_a, N_b) features of
// each set, as torch-fidelity computes it. Deterministic for a given seed. Needs >= 2 features.
KidResult kernel_inception_distance(const torch::Tensor& features_a, const torch::Tensor& features_b,
                                    int64_t subsets = 100, int64_t max_subset_size = 1000, uint64_t seed = 0);

}  // namespace ganlite::metrics
