// The Haar DWT (coefficients, reconstruction, energy, zero-mode padding) and WKD's loss: pinned
// to the WKD release's definition (docs/fidelity.md, "WKD loss reduction") by hand-computed
// values and by an independent PyTorch reference (wkd_reference.py, Debian's python3-torch).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "ganlite/compress/distill_config.h"
#include "ganlite/compress/distill_loss.h"
#include "ganlite/compress/wavelet.h"
#include "ganlite/io/npz.h"
#include "ganlite/util/error.h"
#include "test_support.h"
#include "tolerance.h"

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

namespace {

// Two-level horizontal stripes, the same in every sample and channel: row r of an 8x8 image is
// (r even) + (r / 2 even). Level 1: every 2x2 block is (v+1, v+1; v, v), so LH = 1, HL = HH = 0.
// Level 2: the level-1 LL rows are 3, 1, 3, 1, so LH = (3 + 3 - 1 - 1) / 2 = 2, HL = HH = 0.
// Level 3: LL is constant, no detail. Against a zero teacher, one mean over the stacked bands
// per level gives l1 = 1/3 + 2/3 = 1 and mse = 1/3 + 4/3 = 5/3; the old per-band sum gave 3 and 5.
torch::Tensor two_level_stripes() {
  auto x = torch::zeros({2, 3, 8, 8});
  for (int64_t r = 0; r < 8; ++r) x.select(2, r).fill_(static_cast<float>((r % 2 == 0) + ((r / 2) % 2 == 0)));
  return x;
}

// The WKD term as a distillation run builds it, weighted by the run's resolved default weight.
torch::Tensor weighted_wkd_term(const torch::Tensor& student, const torch::Tensor& teacher, int levels,
                                const std::string& distance) {
  DistillConfig config;
  config.methods = {"wkd"};
  config.set_option("wkd_levels", int64_t{levels});
  config.set_option("wkd_distance", distance);
  const auto resolved = config.resolved("cyclegan");
  DistillContext context;
  context.task = "cyclegan";
  context.config = &resolved;
  const auto term = make_distill_term("wkd", context);
  const ganlite::nn::GeneratorOutput s{student, {}}, t{teacher, {}};
  return term->loss(DistillInputs{student, student, &s, &t}) * resolved.weights.at("wkd");
}

}  // namespace

TEST(WkdLoss, OneMeanOverTheStackedBandsPerLevelOnHandMadeStripes) {
  const auto s = two_level_stripes();
  const auto t = torch::zeros_like(s);
  EXPECT_NEAR(wavelet_detail_loss(s, t, 3, "l1").item<double>(), 1.0, 1e-6);        // not 3
  EXPECT_NEAR(wavelet_detail_loss(s, t, 3, "mse").item<double>(), 5.0 / 3.0, 1e-6);  // not 5
  // The stacked layout itself: [N, C, 3, h, w] with LH first.
  const auto p = haar_dwt(s, 2);
  ASSERT_EQ(p.levels[1].details().sizes(), (std::vector<int64_t>{2, 3, 3, 2, 2}));
  EXPECT_TRUE(torch::allclose(p.levels[1].details().select(2, 0), torch::full({2, 3, 2, 2}, 2.0F)));
  // The release's alpha 0.4 (the default weight) weighs the term by 0.4, not 1.2.
  EXPECT_NEAR(weighted_wkd_term(s, t, 3, "l1").item<double>(), 0.4, 1e-6);
  EXPECT_NEAR(weighted_wkd_term(s, t, 3, "mse").item<double>(), 0.4 * 5.0 / 3.0, 1e-6);
}

TEST(WkdLoss, OddSizesAppendOneZeroRowAndColumnAsPytorchWaveletsZeroMode) {
  // A 3x3 image of ones becomes 4x4 with a zero last row and column. Blocks: (1 1; 1 1) no detail;
  // (1 0; 1 0) HL = 1; (1 1; 0 0) LH = 1; (1 0; 0 0) LH = HL = HH = 1/2. Mean |detail| over the
  // 2 x 2 x 3 stacked coefficients: (1 + 1 + 3/2) / 12 = 7/24. Reflect or replicate padding
  // would give 0; padding at the top / left would give other blocks.
  const auto ones = torch::ones({1, 1, 3, 3});
  const auto p = haar_dwt(ones, 1);
  const auto expect = [](const torch::Tensor& band, std::vector<float> v) {
    const auto e = torch::tensor(v).view({1, 1, 2, 2});
    EXPECT_TRUE(torch::allclose(band, e, 1e-6, 1e-6)) << band << "\nexpected\n" << e;
  };
  expect(p.ll, {2, 1, 1, 0.5});
  expect(p.levels[0].lh, {0, 0, 1, 0.5});
  expect(p.levels[0].hl, {0, 1, 0, 0.5});
  expect(p.levels[0].hh, {0, 0, 0, 0.5});
  EXPECT_NEAR(wavelet_detail_loss(ones, torch::zeros_like(ones), 1, "l1").item<double>(), 7.0 / 24.0, 1e-7);
  // Even sizes are not padded: each level halves them; odd ones round up.
  const auto q = haar_dwt(torch::zeros({1, 1, 37, 50}), 4);
  const std::vector<std::vector<int64_t>> sizes{{19, 25}, {10, 13}, {5, 7}, {3, 4}};
  for (size_t j = 0; j < sizes.size(); ++j) {
    EXPECT_EQ(q.levels[j].lh.size(2), sizes[j][0]) << "level " << j + 1;
    EXPECT_EQ(q.levels[j].lh.size(3), sizes[j][1]) << "level " << j + 1;
  }
}

namespace {

// Bound on |fp32 weighted WKD loss - exact loss| for inputs of [n, c, h, w] with max |x| <= x_max,
// given the exact per-level means (the reference's) m1_j = mean |d| and m2_j = mean d^2 over the
// stacked detail differences d, and the weight. u = 2^-24, gamma(k) = k u / (1 - k u): a sum of
// k + 1 terms in any order is within gamma(k) * sum|terms| (Higham, section 3.1).
// - Level j coefficients are 1/2 (+-a +-b +-c +-d) of four level j-1 LL values, |LL_{j-1}| <=
//   2^{j-1} x_max, so |coefficient| <= 2^j x_max. The conv sums four exact products (x 0.5) in
//   some order (gamma(3) 2^j x_max) and carries the LL_{j-1} error times the filter's L1 norm 2:
//   e_j <= 2 e_{j-1} + gamma(3) 2^j x_max, so e_j <= j gamma(3) 2^j x_max.
// - d = s - t: delta_j <= 2 e_j + u (2^{j+1} x_max + 2 e_j). Stacking is exact.
// - l1: mean of M_j values each within delta_j of |d|: <= delta_j + (gamma(M_j) + 2u)(m1_j + delta_j)
//   (summation, then the division or a multiplication by a rounded 1/M_j).
// - mse: |d'^2 - d^2| <= delta_j (2|d| + delta_j), squaring rounds by u d'^2: <= delta_j (2 m1_j
//   + delta_j) + (gamma(M_j) + 2u)(m2_j + delta_j (2 m1_j + delta_j)).
// - Sum of J level terms onto 0: gamma(J) of the sum; the weight (rounded to fp32) and the product:
//   2u. The float64 reference's own error (~1e-16 relative) is covered by 1e-12 |loss|.
double wkd_fp32_bound(const std::vector<int64_t>& shape, double x_max, const std::vector<double>& m1,
                      const std::vector<double>& m2, const std::string& distance, double weight) {
  const double u = 0x1p-24;
  const auto gamma = [u](double k) { return k * u / (1.0 - k * u); };
  int64_t h = shape[2], w = shape[3];
  double e = 0.0, terms = 0.0, errors = 0.0;
  for (size_t j = 1; j <= m1.size(); ++j) {
    h = (h + 1) / 2;
    w = (w + 1) / 2;
    const double m = static_cast<double>(shape[0] * shape[1] * 3 * h * w);
    const double scale = std::ldexp(x_max, static_cast<int>(j));  // 2^j x_max
    e = 2.0 * e + gamma(3) * scale;
    const double delta = 2.0 * e + u * (2.0 * scale + 2.0 * e);
    const double term = distance == "l1" ? m1[j - 1] : m2[j - 1];
    const double shift = distance == "l1" ? delta : delta * (2.0 * m1[j - 1] + delta);
    errors += shift + (gamma(m) + 2.0 * u) * (term + shift);
    terms += term;
  }
  const double levels = static_cast<double>(m1.size());
  const double total = weight * (errors + (gamma(levels) + 2.0 * u) * (terms + errors));
  return total + 1e-12 * weight * terms;
}

}  // namespace

TEST(WkdLoss, MatchesAnIndependentPyTorchReferenceOfTheRelease) {
  if (!ganlite::testing::python_has_module("torch")) GTEST_SKIP() << "no python3-torch for the WKD reference";
  ganlite::testing::TempDir dir;
  torch::manual_seed(15);
  struct Case {
    std::vector<int64_t> shape;
    int levels;
    double teacher_noise;  // 0: an unrelated teacher image; else the student plus this much noise
  };
  // The release's setting (J = 4), odd sizes at every level, and a student close to its teacher.
  const std::vector<Case> cases{{{2, 3, 64, 64}, 4, 0.0}, {{1, 3, 37, 50}, 4, 0.0}, {{3, 1, 24, 40}, 3, 0.05}};
  const double alpha = 0.4;  // the release's --kd_wavelet_distillation (run.sh)
  std::map<std::string, torch::Tensor> arrays;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> inputs;
  for (size_t k = 0; k < cases.size(); ++k) {
    const auto& c = cases[k];
    const auto student = torch::tanh(torch::randn(c.shape));
    const auto teacher = c.teacher_noise > 0 ? (student + c.teacher_noise * torch::randn(c.shape)).clamp(-1, 1)
                                             : torch::tanh(torch::randn(c.shape));
    inputs.emplace_back(student, teacher);
    const auto key = std::to_string(k);
    arrays["student_" + key] = student;
    arrays["teacher_" + key] = teacher;
    arrays["levels_" + key] = torch::tensor({static_cast<int64_t>(c.levels)});
    arrays["weight_" + key] = torch::tensor({alpha}, torch::kFloat64);
  }
  ganlite::io::save_npz(dir / "inputs.npz", arrays);
  const auto r = ganlite::testing::run_command(ganlite::testing::system_python() + " '" + GANLITE_SOURCE_DIR +
                                               "/tests/compress/wkd_reference.py' '" + (dir / "inputs.npz").string() +
                                               "' 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::vector<nlohmann::json> refs;
  std::istringstream lines(r.output);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line[0] == '{') refs.push_back(nlohmann::json::parse(line));
  }
  ASSERT_EQ(refs.size(), cases.size()) << r.output;
  for (size_t k = 0; k < cases.size(); ++k) {
    const auto& ref = refs[k];
    const auto m1 = ref["l1"]["levels"].get<std::vector<double>>();
    const auto m2 = ref["mse"]["levels"].get<std::vector<double>>();
    ASSERT_EQ(m1.size(), static_cast<size_t>(cases[k].levels));
    for (const std::string distance : {"l1", "mse"}) {
      const double expected = ref[distance]["total"].get<double>();
      const double actual =
          weighted_wkd_term(inputs[k].first, inputs[k].second, cases[k].levels, distance).item<double>();
      const double bound = wkd_fp32_bound(cases[k].shape, ref["max_abs_input"].get<double>(), m1, m2, distance, alpha);
      ganlite::testing::expect_figure_close(actual, expected, bound,
                                            "case " + std::to_string(k) + " " + distance + " (pytorch_wavelets: " +
                                                ref["pytorch_wavelets"].get<std::string>() + ")");
      // The bound is far below the factor of 3 a per-band sum would make.
      EXPECT_LT(bound, 0.01 * expected) << "case " << k << " " << distance;
    }
  }
}
