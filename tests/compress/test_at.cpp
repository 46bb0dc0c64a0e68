// Attention transfer (at_method.h), the method added through the registry alone: the term on
// hand-made maps and against an independent double-precision computation, its registry entry,
// and a tiny `ganlite distill --method at` run.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <vector>

#include "ganlite/compress/at_method.h"
#include "ganlite/compress/distill_config.h"
#include "ganlite/io/checkpoint.h"
#include "ganlite/nn/generator.h"
#include "ganlite/util/error.h"
#include "test_support.h"
#include "tolerance.h"

namespace fs = std::filesystem;
using namespace ganlite;
using namespace ganlite::compress;
using ganlite::testing::kFp32Epsilon;
using ganlite::testing::read_jsonl;
using ganlite::testing::run_cli;
using ganlite::testing::TempDir;

namespace {

double at_term(const std::vector<torch::Tensor>& student_taps, const std::vector<torch::Tensor>& teacher_taps) {
  const auto image = torch::zeros({student_taps[0].size(0), 3, 4, 4});
  const nn::GeneratorOutput s{image, student_taps}, t{image, teacher_taps};
  auto term = make_distill_term(kAtMethod, DistillContext{});
  return term->loss(DistillInputs{image, image, &s, &t}).item<double>();
}

// The attention map of sample n in double precision, straight from the paper's definition
// (p = 2, channel mean) with the public code's L2 normalisation.
std::vector<double> reference_map(const torch::Tensor& f, int64_t n) {
  const auto x = f.to(torch::kDouble).contiguous();
  const int64_t c = x.size(1), hw = x.size(2) * x.size(3);
  const auto a = x.accessor<double, 4>();
  std::vector<double> map(static_cast<size_t>(hw), 0.0);
  for (int64_t k = 0; k < c; ++k) {
    for (int64_t i = 0; i < hw; ++i) {
      const double v = a[n][k][i / x.size(3)][i % x.size(3)];
      map[i] += v * v / static_cast<double>(c);
    }
  }
  double norm = 0;
  for (double v : map) norm += v * v;
  norm = std::max(std::sqrt(norm), 1e-12);
  for (double& v : map) v /= norm;
  return map;
}

double reference_term(const std::vector<torch::Tensor>& s, const std::vector<torch::Tensor>& t) {
  double total = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const int64_t n = s[i].size(0), hw = s[i].size(2) * s[i].size(3);
    double sum = 0;
    for (int64_t k = 0; k < n; ++k) {
      const auto a = reference_map(s[i], k), b = reference_map(t[i], k);
      for (int64_t j = 0; j < hw; ++j) sum += (a[j] - b[j]) * (a[j] - b[j]);
    }
    total += sum / static_cast<double>(n * hw);
  }
  return total;
}

}  // namespace

// A uniform student map (a = 1/2 on 2x2) against a teacher whose energy sits in one pixel (a =
// one-hot): (a_S - a_T)^2 is 1/4 everywhere, per tap. The channel counts differ (3 and 5): AT
// needs no adapter. Powers of two throughout: exact in fp32.
TEST(AtLoss, UniformAgainstOneHotMapsIsAQuarterPerTapWhateverTheWidths) {
  const auto student = torch::ones({2, 3, 2, 2});
  auto teacher = torch::zeros({2, 5, 2, 2});
  teacher.index_put_({torch::indexing::Slice(), torch::indexing::Slice(), 0, 0}, 3.0);
  EXPECT_EQ(at_term({student}, {teacher}), 0.25);
  EXPECT_EQ(at_term({student, student}, {teacher, teacher}), 0.5);  // summed over taps
  EXPECT_EQ(at_term({student}, {student * 7}), 0.0);                 // the map ignores the scale
  // An all-zero map stays zero (F.normalize's eps), so the term is the student map's squared norm / HW.
  EXPECT_EQ(at_term({student}, {torch::zeros({2, 5, 2, 2})}), 0.25);
}

// Random taps of the sizes a generator has, against the double-precision reference. Each map
// entry is a channel mean (C roundings) normalised by a norm over HW entries (HW + 2) in fp32, so
// it is within (C + HW + 4) u of its exact value (entries <= 1, u = eps32 / 2); a difference of
// two (each <= 1) within delta = 2 (C + HW + 4) u, its square (<= 4) within 4 delta + delta^2,
// and the mean over N * HW of them adds N * HW * u of the largest square (4).
TEST(AtLoss, MatchesAnIndependentDoublePrecisionComputationWithinTheFp32Bound) {
  torch::manual_seed(11);
  const std::vector<torch::Tensor> s{torch::randn({3, 8, 8, 8}), torch::randn({3, 4, 4, 4})};
  const std::vector<torch::Tensor> t{torch::randn({3, 16, 8, 8}), torch::randn({3, 12, 4, 4})};
  const double u = kFp32Epsilon / 2;
  double bound = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const double c = static_cast<double>(std::max(s[i].size(1), t[i].size(1)));
    const double hw = static_cast<double>(s[i].size(2) * s[i].size(3)), n = static_cast<double>(s[i].size(0));
    const double delta = 2 * (c + hw + 4) * u;
    bound += 4 * delta + delta * delta + 4 * n * hw * u;
  }
  const double expected = reference_term(s, t);
  EXPECT_GT(expected, 20 * bound);  // the comparison means something
  EXPECT_NEAR(at_term(s, t), expected, bound);
}

TEST(AtLoss, GradientReachesTheStudentTapsOnlyAndABatchOfOneWorks) {
  torch::manual_seed(12);
  auto s = torch::randn({1, 4, 4, 4}).requires_grad_(true);
  const auto t = torch::randn({1, 6, 4, 4});
  const auto image = torch::zeros({1, 3, 4, 4});
  const nn::GeneratorOutput so{image, {s}}, to{image, {t}};
  auto term = make_distill_term(kAtMethod, DistillContext{});
  term->loss(DistillInputs{image, image, &so, &to}).backward();
  ASSERT_TRUE(s.grad().defined());
  EXPECT_GT(s.grad().abs().sum().item<double>(), 0.0);
  EXPECT_FALSE(term->has_student_side_parameters());
  // Taps of other spatial sizes are refused, naming the tap.
  const nn::GeneratorOutput small{image, {torch::randn({1, 6, 2, 2})}};
  EXPECT_THROW(term->loss(DistillInputs{image, image, &so, &small}), Error);
}

TEST(AtMethod, RegisteredWithItsDefaultWeightAndBatchOfOne) {
  const auto& m = distill_method(kAtMethod);
  EXPECT_EQ(m.min_batch_size, 1);
  DistillConfig d;
  d.methods = parse_distill_methods("ka+at");
  d.lambda_distill = 0.25;  // at keeps its own default: its scale differs by orders of magnitude
  EXPECT_EQ(d.resolved("pix2pix").weights.at(kAtMethod), 500.0);
  d.methods = parse_distill_methods("at");
  d.teacher = d.student = "x";
  EXPECT_NO_THROW(d.resolved("pix2pix").validate(1));
}

// `ganlite distill --method at`: a few iterations of batch 1 on tiny inception generators; the
// term is logged as G_at and the run's config names the method with its weight. Flags from the
// option tables are refused out of bounds or without their method.
TEST(AtCli, DistilsAFewIterationsWithMethodAt) {
  TempDir dir;
  const auto data = dir / "e2s";
  const auto made = run_cli("make-dataset --kind edges2shapes --count 4 --test-count 1 --size 32 --seed 1 -q --out '" +
                            data.string() + "'");
  ASSERT_EQ(made.exit_code, 0) << made.output;
  nn::ArchConfig c;
  c.arch = "inception";
  c.n_blocks = 3;
  c.norm = "batch";
  torch::manual_seed(2);
  c.ngf = 8;
  const auto teacher = dir / "teacher.safetensors";
  io::save_generator(teacher, *nn::make_generator(c));
  c.ngf = 4;
  const auto student = dir / "student.safetensors";
  io::save_generator(student, *nn::make_generator(c));
  auto args = [&](const fs::path& out, const std::string& extra) {
    return "distill --method at " + extra + " --teacher '" + teacher.string() + "' --student '" + student.string() +
           "' --task pix2pix --data '" + data.string() +
           "' --batch-size 1 --ndf 4 --load-size 32 --crop-size 32 --n-epochs 1 --n-epochs-decay 0"
           " --sample-freq 0 --log-freq 1 --threads 1 --workers 1 --seed 3 -q --out '" +
           out.string() + "'";
  };
  // The other methods' flags come from their option tables: bounds and method checked.
  const auto levels = run_cli(args(dir / "bad1", "--wkd-levels 14"));
  EXPECT_EQ(levels.exit_code, 2);
  EXPECT_NE(levels.output.find("--wkd-levels must be in [1, 13], got 14"), std::string::npos) << levels.output;
  const auto dcd_only = run_cli(args(dir / "bad2", "--teacher-ndf 8"));
  EXPECT_EQ(dcd_only.exit_code, 2);
  EXPECT_NE(dcd_only.output.find("add dcd to --method"), std::string::npos) << dcd_only.output;

  const auto out = dir / "run";
  const auto r = run_cli(args(out, "--lambda-at 250"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto config = nlohmann::json::parse(ganlite::testing::read_text_file(out / "config.json"));
  EXPECT_EQ(config.at("distill").at("methods"), nlohmann::json::array({"at"}));
  EXPECT_EQ(config.at("distill").at("weights").at("at"), 250.0);
  const auto lines = read_jsonl(out / "metrics.jsonl");
  ASSERT_EQ(lines.size(), 4u);
  for (const auto& line : lines) {
    ASSERT_TRUE(line.contains("G_at"));
    EXPECT_TRUE(std::isfinite(line.at("G_at").get<double>()));
    EXPECT_GT(line.at("G_at").get<double>(), 0.0);
  }
}
