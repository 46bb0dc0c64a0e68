// Tolerances for comparing two computations that are equal in exact arithmetic but run through
// different fp32 code paths: the fast inference path against the module, an imported model
// against PyTorch's output, OpenCV DNN against LibTorch, merged convs against unmerged ones,
// batch 1 against batch 2. oneDNN picks its kernels per CPU (AVX2, AVX-512, AVX-512 bf16, AMX)
// and per shape, LibTorch sends some convs to BLAS instead, so fp32 sums are added in another
// order and round differently. The bounds here follow from fp32 arithmetic and the sizes of the
// layers involved, never from what one machine happened to produce. Comparisons of a run with a
// run of the same code path (resume, determinism) stay bit-exact and do not use these.
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <limits>
#include <sstream>
#include <string>

#include "ganlite/metrics/image_quality.h"
#include "ganlite/nn/inference.h"

namespace ganlite::testing {

// fp32 machine epsilon 2^-23, twice the unit roundoff u = 2^-24.
inline constexpr double kFp32Epsilon = 0x1p-23;

// A sum of K products computed in fp32 in any order (serial, blocked, vectorised, fused
// multiply-add) is within gamma_K * sum|x_i w_i| of the exact sum, gamma_K = K u / (1 - K u)
// (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., section 3.1). Each layer of a
// network is such a sum with K its reduction length (fan-in); the error a layer adds reaches the
// output through later layers that normalise (BatchNorm, InstanceNorm) or squash (tanh, ReLU),
// so each layer adds about K u of the output's scale. Two evaluations each within u * sum(K) of
// the exact output differ by at most 2 u sum(K) = eps32 * sum(K), relative to the output's scale.
// This is the worst case of every rounding error pointing the same way; typical errors are
// ~sqrt(K) u per layer, so the bound leaves room for the conditioning it does not model
// (cancellation in a sum, a layer that amplifies). Statistics of norm layers (mean, variance)
// are pairwise / Welford reductions, ~log2(N) u: negligible next to the conv sums.
// The scale is that of the values the last sums produce. For a tanh output that is about 1 when
// the pre-activations z are (a trained network's are): an element moves by sech^2(z) times the
// error of z, <= 0.45 r for an error r|z|. Networks whose activations grow layer after layer
// (random weights of unit-less scale, BatchNorm statistics that do not match) have sums of size
// max|z| >> 1 even where z ~ 0 and need that scale: test networks are kept at unit gain (see
// tests/fixtures/interop/README.md).

// The reduction length of a layer: the number of products summed for one output.
// Conv2d: Cin / groups * kh * kw; ConvTranspose2d: at most Cin / groups * kh * kw (an upper
// bound, each output sees about 1 / stride^2 of the kernel); Linear: in_features.
inline int64_t reduction_length(const torch::nn::Module& layer) {
  if (const auto* conv = dynamic_cast<const torch::nn::Conv2dImpl*>(&layer)) {
    const auto& w = conv->weight;
    return w.size(1) * w.size(2) * w.size(3);  // weight [Cout, Cin / groups, kh, kw]
  }
  if (const auto* up = dynamic_cast<const torch::nn::ConvTranspose2dImpl*>(&layer)) {
    const auto& w = up->weight;  // [Cin, Cout / groups, kh, kw]
    return w.size(0) / up->options.groups() * w.size(2) * w.size(3);
  }
  if (const auto* fc = dynamic_cast<const torch::nn::LinearImpl*>(&layer)) return fc->weight.size(1);
  return 0;
}

// sum(K) over every conv / transposed conv / linear layer of a network: an upper bound on the
// roundings along its deepest path (parallel branches are counted as if in sequence).
inline int64_t summed_reduction_length(const torch::nn::Module& net) {
  int64_t total = reduction_length(net);
  for (const auto& m : net.modules(/*include_self=*/false)) total += reduction_length(*m);
  return total;
}

// The largest magnitude of a tensor: the scale errors are relative to.
inline double max_abs(const torch::Tensor& t) { return t.numel() ? t.abs().max().item<double>() : 0.0; }

// Bound on max|a - b| for two fp32 evaluations of one network by different code paths:
// eps32 * sum(K) * scale, scale = the output's largest magnitude (see above).
inline double fp32_network_tolerance(int64_t summed_k, double scale) {
  return kFp32Epsilon * static_cast<double>(summed_k) * scale;
}
inline double fp32_network_tolerance(const torch::nn::Module& net, double scale) {
  return fp32_network_tolerance(summed_reduction_length(net), scale);
}

// Passes when max|actual - expected| <= bound; the message gives the error, scale and bound.
inline ::testing::AssertionResult max_abs_diff_within(const torch::Tensor& actual, const torch::Tensor& expected,
                                                      double bound) {
  if (actual.sizes() != expected.sizes()) {
    return ::testing::AssertionFailure() << "shapes differ: " << actual.sizes() << " vs " << expected.sizes();
  }
  const double err = max_abs(actual.to(torch::kFloat64) - expected.to(torch::kFloat64));
  auto result = err <= bound ? ::testing::AssertionSuccess() : ::testing::AssertionFailure();
  return result << "max abs err " << err << " (scale " << max_abs(expected) << ", bound " << bound << ")";
}

// With GANLITE_TEST_PRINT_TOLERANCES=1 in the environment the comparisons below print their
// error and bound, to see the margin on a new CPU.
inline void print_tolerance(const std::string& what, const std::string& result) {
  if (const char* print = std::getenv("GANLITE_TEST_PRINT_TOLERANCES"); print && std::string(print) == "1") {
    std::cerr << "[tolerance] " << what << ": " << result << "\n";
  }
}

// The usual case: actual and expected are one network's output by two code paths.
inline void expect_close(const torch::Tensor& actual, const torch::Tensor& expected, double bound,
                         const std::string& what) {
  const auto result = max_abs_diff_within(actual, expected, bound);
  print_tolerance(what, result.message());
  EXPECT_TRUE(result) << what;
}

// A figure (PSNR, SSIM, a loss) computed from two code paths' outputs.
inline void expect_figure_close(double actual, double expected, double bound, const std::string& what) {
  std::ostringstream text;
  text << "err " << std::abs(actual - expected) << ", bound " << bound;
  print_tolerance(what, text.str());
  EXPECT_LE(std::abs(actual - expected), bound) << what << ": " << actual << " vs " << expected;
}

// ---- bf16 -------------------------------------------------------------------------------------
// True when LibTorch can run a bf16 conv here. LibTorch 1.13 sends bf16 convs to oneDNN when the
// CPU has AVX-512 (cpuinfo), but oneDNN restricted below that (ONEDNN_MAX_CPU_ISA=AVX2, the way
// to test the suite as on an AVX2-only CPU) refuses them ("could not create a primitive
// descriptor"): bf16 tests skip then.
inline bool bf16_convs_run() { return nn::bf16_convs_run(torch::Device(torch::kCPU)); }

// ---- 8-bit images ---------------------------------------------------------------------------
// An fp32 image in [-1, 1] becomes uint8 through metrics::quantize_to_uint8 (scale to 0..255,
// clamp, truncate). Two fp32 paths within `bound` of each other give 8-bit images that differ by
// at most one level (for bound < 1/127.5), and only where the value lies within `bound` of a
// level boundary.

// Pixels whose 8-bit value can change when the fp32 image v moves by at most `bound`. Every step
// of quantize_to_uint8 is monotone (fp32 rounding included), so the value of any v' in
// [v - bound, v + bound] lies between quantize(v - bound) and quantize(v + bound): exactly the
// pixels where those two differ can change.
inline torch::Tensor levels_that_may_change(const torch::Tensor& images, double bound) {
  const auto v = images.to(torch::kFloat32);
  return metrics::quantize_to_uint8(v - bound) != metrics::quantize_to_uint8(v + bound);
}

// Passes when two uint8 images differ by at most one level anywhere.
inline ::testing::AssertionResult within_one_level(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.sizes() != b.sizes()) return ::testing::AssertionFailure() << "shapes differ";
  const double worst = max_abs(a.to(torch::kInt32) - b.to(torch::kInt32));
  auto result = worst <= 1.0 ? ::testing::AssertionSuccess() : ::testing::AssertionFailure();
  return result << "max difference " << worst << " levels";
}

// Passes when every pixel where the uint8 images differ is one `may_change` marks.
inline ::testing::AssertionResult changes_only_where_allowed(const torch::Tensor& a, const torch::Tensor& b,
                                                             const torch::Tensor& may_change) {
  const auto changed = a != b;
  const auto unexpected = (changed & ~may_change).sum().item<int64_t>();
  auto result = unexpected == 0 ? ::testing::AssertionSuccess() : ::testing::AssertionFailure();
  return result << changed.sum().item<int64_t>() << " of " << a.numel() << " pixels changed, " << unexpected
                << " of them outside the " << may_change.sum().item<int64_t>()
                << " within the fp32 bound of a level boundary";
}

// ---- PSNR and SSIM of 8-bit images ------------------------------------------------------------

// RMS of the change (in levels) of an image whose pixels move by at most one level where
// `may_change` is set: sqrt(fraction of such pixels).
inline double rms_level_change(const torch::Tensor& may_change) {
  return std::sqrt(may_change.to(torch::kFloat64).mean().item<double>());
}

// Bound on how far PSNR = 20 log10(255 / RMSE) moves when one image moves by an RMS of
// `rms_change` levels. RMSE is a norm of the difference (scaled), so by the triangle inequality
// it moves by at most rms_change; PSNR then moves at most 20 log10(RMSE / (RMSE - rms_change)),
// the larger of the two sides. The report caps PSNR at 100 dB; min() with a constant cannot
// widen a difference. Infinite when the change could reach RMSE (nothing to bound then).
inline double psnr_change_bound(double psnr_db, double rms_change) {
  const double rmse = 255.0 * std::pow(10.0, -psnr_db / 20.0);
  if (rms_change <= 0.0) return 0.0;
  if (rms_change >= rmse) return std::numeric_limits<double>::infinity();
  return 20.0 * std::log10(rmse / (rmse - rms_change));
}

// Bound on |SSIM(a', b') - SSIM(a, b)| for uint8 images [1, C, H, W] when a' and b' differ from a
// and b by at most one level on the pixels marked in may_change_a / may_change_b. metrics::ssim
// averages, over window positions p and channels, S = L * CS with Gaussian weights w (11x11,
// sigma 1.5, sum 1) and C1 = (0.01 * 255)^2, C2 = (0.03 * 255)^2:
//   L  = (2 mu_a mu_b + C1) / (mu_a^2 + mu_b^2 + C1),   CS = (2 s_ab + C2) / (s_a^2 + s_b^2 + C2).
// Change a first (b fixed), with m = sum of w over the marked pixels of the window:
//   |d mu_a| <= m; the weighted norm of the change is <= sqrt(m), so (triangle inequality)
//   |d s_a| <= sqrt(m) and |d s_ab| <= sqrt(m) s_b.
//   |dL/d mu_a| = 2 |mu_b - mu_a| (mu_b (mu_a + mu_b) + C1) / D^2 <= 3 / sqrt(D) for means >= 0,
//   D = mu_a^2 + mu_b^2 + C1; |dCS/d s_a| <= 2 s_a / E <= 1 / sqrt(C2) and
//   |dCS/d s_ab| * s_b = 2 s_b / E <= 1 / sqrt(C2), E = s_a^2 + s_b^2 + C2 (E >= 2 s sqrt(C2)).
//   |L|, |CS| <= 1, so |dS| <= |dL| + |dCS| <= 3 m / sqrt(D_min) + 2 sqrt(m) / sqrt(C2),
// D_min the smallest D the means can reach. Then the same for b (a' fixed); S moves by at most 2.
inline double ssim_change_bound(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& may_change_a,
                                const torch::Tensor& may_change_b) {
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  const int64_t window = 11;
  auto g = torch::exp(-(torch::arange(window, f64) - 5.0).pow(2) / (2.0 * 1.5 * 1.5));
  g = g / g.sum();
  const auto filter = [&](const torch::Tensor& x) {  // per channel, 'valid', as metrics::ssim
    const int64_t c = x.size(1);
    namespace F = torch::nn::functional;
    const auto h = F::conv2d(x, g.view({1, 1, 1, window}).expand({c, 1, 1, window}), F::Conv2dFuncOptions().groups(c));
    return F::conv2d(h, g.view({1, 1, window, 1}).expand({c, 1, window, 1}), F::Conv2dFuncOptions().groups(c));
  };
  const double c1 = std::pow(0.01 * 255.0, 2), c2 = std::pow(0.03 * 255.0, 2);
  const auto m_a = filter(may_change_a.to(torch::kFloat64)), m_b = filter(may_change_b.to(torch::kFloat64));
  const auto mu_a = filter(a.to(torch::kFloat64)), mu_b = filter(b.to(torch::kFloat64));
  const auto d_min = (mu_a - m_a).clamp_min(0).pow(2) + (mu_b - m_b).clamp_min(0).pow(2) + c1;
  const auto per_window = 3.0 * (m_a + m_b) / d_min.sqrt() + 2.0 * (m_a.sqrt() + m_b.sqrt()) / std::sqrt(c2);
  return per_window.clamp_max(2.0).mean().item<double>();
}

}  // namespace ganlite::testing
