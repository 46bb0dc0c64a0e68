// evaluate_teacher_student and the written report: figures against a direct computation,
// teacher == student, FID / KID with random Inception weights, unpaired data, bad inputs.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "ganlite/data/dataset.h"
#include "ganlite/io/npz.h"
#include "ganlite/metrics/fid.h"
#include "ganlite/metrics/image_quality.h"
#include "ganlite/nn/inference.h"
#include "ganlite/nn/profiler.h"
#include "ganlite/nn/translate.h"
#include "ganlite/report/html_report.h"
#include "ganlite/util/error.h"

#include "test_support.h"
#include "metrics/inception_weights.h"
#include "report_fixture.h"
#include "tolerance.h"

namespace fs = std::filesystem;
namespace report = ganlite::report;
namespace metrics = ganlite::metrics;
using ganlite::testing::report_fixture;
using ganlite::testing::TempDir;

namespace {

report::EvalOptions fast_options(const fs::path& data) {
  report::EvalOptions o;
  o.data = data.string();
  o.latency_size = 32;
  o.profile_size = 64;
  o.latency.warmup = 1;
  o.latency.runs = 2;
  o.grid_images = 2;
  return o;
}

// The figures FiguresMatchADirectComputation checks, summed then averaged over the test images.
struct Figures {
  double teacher_psnr = 0, student_psnr = 0, student_ssim = 0, student_psnr_vs_teacher = 0;
  Figures& operator+=(const Figures& o) {
    teacher_psnr += o.teacher_psnr;
    student_psnr += o.student_psnr;
    student_ssim += o.student_ssim;
    student_psnr_vs_teacher += o.student_psnr_vs_teacher;
    return *this;
  }
  Figures& operator/=(double n) {
    teacher_psnr /= n;
    student_psnr /= n;
    student_ssim /= n;
    student_psnr_vs_teacher /= n;
    return *this;
  }
};

// One test image's figures from the plain module's outputs, from the fast inference path's, and
// the bound on how far they may differ: two fp32 evaluations differ by at most the network's fp32
// bound, so an 8-bit value moves by at most one level and only where the module's value lies
// within that bound of a level boundary (checked); PSNR and SSIM then move by at most
// psnr_change_bound / ssim_change_bound of those pixels (tests/tolerance.h).
struct BothPaths {
  Figures module, runner, bound;
};

BothPaths figures_by_both_paths(ganlite::nn::GeneratorImpl& teacher, ganlite::nn::GeneratorImpl& student,
                                const torch::Tensor& x, const torch::Tensor& truth) {
  namespace tol = ganlite::testing;
  const auto fast = [&](ganlite::nn::GeneratorImpl& g) {
    const ganlite::nn::InferenceRunner runner(g);
    return metrics::quantize_to_uint8(ganlite::nn::translate_padded(
        [&](const torch::Tensor& in) { return runner.forward(in); }, x, ganlite::nn::size_multiple(g.config())));
  };
  using ganlite::metrics::capped_psnr;
  const auto y = metrics::quantize_to_uint8(truth);
  const auto t_fp32 = ganlite::nn::translate_padded(teacher, x);
  const auto s_fp32 = ganlite::nn::translate_padded(student, x);
  const auto t = metrics::quantize_to_uint8(t_fp32), s = metrics::quantize_to_uint8(s_fp32);
  const auto t_fast = fast(teacher), s_fast = fast(student);
  const auto t_may = tol::levels_that_may_change(t_fp32, tol::fp32_network_tolerance(teacher, tol::max_abs(t_fp32)));
  const auto s_may = tol::levels_that_may_change(s_fp32, tol::fp32_network_tolerance(student, tol::max_abs(s_fp32)));
  EXPECT_TRUE(tol::within_one_level(t_fast, t)) << "teacher";
  EXPECT_TRUE(tol::within_one_level(s_fast, s)) << "student";
  for (const auto& [what, changes] : {std::pair{"teacher", tol::changes_only_where_allowed(t_fast, t, t_may)},
                                      std::pair{"student", tol::changes_only_where_allowed(s_fast, s, s_may)}}) {
    tol::print_tolerance(what, changes.message());
    EXPECT_TRUE(changes) << what;
  }
  BothPaths r;
  r.module = {capped_psnr(t, y), capped_psnr(s, y), metrics::ssim(s, y).item<double>(), capped_psnr(s, t)};
  r.runner = {capped_psnr(t_fast, y), capped_psnr(s_fast, y), metrics::ssim(s_fast, y).item<double>(),
              capped_psnr(s_fast, t_fast)};
  const double d_t = tol::rms_level_change(t_may), d_s = tol::rms_level_change(s_may);
  r.bound = {tol::psnr_change_bound(r.module.teacher_psnr, d_t), tol::psnr_change_bound(r.module.student_psnr, d_s),
             tol::ssim_change_bound(s, y, s_may, torch::zeros_like(s_may)),
             tol::psnr_change_bound(r.module.student_psnr_vs_teacher, d_s + d_t)};
  EXPECT_LT(r.bound.student_psnr_vs_teacher, 1.0) << "a bound that cannot fail";
  return r;
}

using ganlite::testing::count_of;

}  // namespace

TEST(Evaluate, FiguresMatchADirectComputation) {
  const auto& f = report_fixture();
  const auto r = report::evaluate_teacher_student(f.teacher, f.student, fast_options(f.paired), torch::kCPU);
  EXPECT_EQ(r.count, 5);
  EXPECT_EQ(r.size, 32);  // the test images' height
  EXPECT_EQ(r.split, "test (B)");

  // PSNR / SSIM by hand: the A|B test files, each generator, the capped mean. evaluate runs the
  // generators through the fast inference path; the plain module is another fp32 evaluation, so
  // its figures may differ by what one-level changes allow (see figures_by_both_paths). The fast
  // path run here again is the same code path: its figures are evaluate's to the last bit.
  ganlite::data::DatasetOptions d;
  d.transform.load_size = d.transform.crop_size = 32;
  d.transform.flip = false;
  const auto set = ganlite::data::open_aligned(f.paired, "test", d);
  auto teacher = ganlite::io::load_generator(f.teacher);
  auto student = ganlite::io::load_generator(f.student);
  teacher->eval();
  student->eval();
  Figures module, runner, bound;
  for (size_t i = 0; i < set->size(); ++i) {
    SCOPED_TRACE("test image " + std::to_string(i));
    const auto s = set->get(i, 0);
    const BothPaths both = figures_by_both_paths(*teacher, *student, s.a.unsqueeze(0), s.b.unsqueeze(0));
    module += both.module;
    runner += both.runner;
    bound += both.bound;
  }
  const double n = static_cast<double>(set->size());
  module /= n;
  runner /= n;
  bound /= n;
  using ganlite::testing::expect_figure_close;
  expect_figure_close(r.teacher.psnr, module.teacher_psnr, bound.teacher_psnr, "teacher PSNR");
  expect_figure_close(r.student.psnr, module.student_psnr, bound.student_psnr, "student PSNR");
  expect_figure_close(r.student.ssim, module.student_ssim, bound.student_ssim, "student SSIM");
  expect_figure_close(*r.student.psnr_vs_teacher, module.student_psnr_vs_teacher, bound.student_psnr_vs_teacher,
                      "student PSNR vs teacher");
  EXPECT_NEAR(r.teacher.psnr, runner.teacher_psnr, 1e-9);
  EXPECT_NEAR(r.student.psnr, runner.student_psnr, 1e-9);
  EXPECT_NEAR(r.student.ssim, runner.student_ssim, 1e-9);
  EXPECT_NEAR(*r.student.psnr_vs_teacher, runner.student_psnr_vs_teacher, 1e-9);
  EXPECT_FALSE(r.teacher.psnr_vs_teacher.has_value());

  // Costs: the profiler's figures; the ngf-8 teacher costs more than the ngf-4 student.
  const auto tprof = ganlite::nn::profile_generator(teacher->config(), 32);
  EXPECT_EQ(r.teacher.macs, tprof.macs);
  EXPECT_EQ(r.teacher.params, tprof.params);
  EXPECT_EQ(r.teacher.macs_profile, ganlite::nn::profile_generator(teacher->config(), 64).macs);
  EXPECT_EQ(r.student.macs, ganlite::nn::profile_generator(student->config(), 32).macs);
  EXPECT_GT(r.teacher.macs, 2 * r.student.macs);
  EXPECT_EQ(r.teacher.latency.size, 32);
  EXPECT_EQ(r.teacher.latency.samples_ms.size(), 2u);
  EXPECT_GT(r.student.latency_at_size.median_ms, 0.0);
  // latency_size is the evaluation size here: measured once, reported under both names.
  EXPECT_EQ(r.student.latency_at_size.samples_ms, r.student.latency.samples_ms);

  // report.json holds the same numbers under the documented names.
  const auto j = r.to_json();
  EXPECT_EQ(j["teacher"]["macs"].get<int64_t>(), r.teacher.macs);
  EXPECT_DOUBLE_EQ(j["student"]["psnr"].get<double>(), r.student.psnr);
  EXPECT_DOUBLE_EQ(j["student"]["psnr_vs_teacher"].get<double>(), *r.student.psnr_vs_teacher);
  EXPECT_DOUBLE_EQ(j["student"]["latency_ms"]["median"].get<double>(), r.student.latency.median_ms);
  EXPECT_DOUBLE_EQ(j["ratios"]["macs"].get<double>(),
                   static_cast<double>(r.teacher.macs) / static_cast<double>(r.student.macs));
  EXPECT_DOUBLE_EQ(j["ratios"]["latency"].get<double>(), r.teacher.latency.median_ms / r.student.latency.median_ms);
  EXPECT_EQ(j["data"]["count"].get<int>(), 5);
  EXPECT_FALSE(j.contains("fid"));
  EXPECT_EQ(j["curves"]["teacher"]["losses"].size(), 4u);
  EXPECT_FALSE(j["curves"]["student"]["note"].get<std::string>().empty());

  // Grid rows: the first two test images at the evaluation size.
  ASSERT_EQ(r.grid.size(), 2u);
  EXPECT_EQ(r.grid[0].teacher.rows, 32);
  EXPECT_EQ(r.grid[0].target.cols, 32);
}

TEST(Evaluate, TeacherAsStudentGivesIdenticalFiguresAndFid) {
  const auto& f = report_fixture();
  auto o = fast_options(f.paired);
  o.max_images = 4;
  o.size = 28;  // not a multiple of 4: padded for the resnet and cropped back
  o.inception = ganlite::testing::random_inception_weights().string();
  o.kid_subsets = 5;
  o.kid_subset_size = 3;  // of the 4 images (`eval --kid-subset-size`)
  const auto r = report::evaluate_teacher_student(f.teacher, f.teacher, o, torch::kCPU);
  EXPECT_EQ(r.count, 4);
  EXPECT_EQ(r.size, 28);
  EXPECT_DOUBLE_EQ(*r.student.psnr_vs_teacher, 100.0);  // the cap for identical images
  EXPECT_DOUBLE_EQ(*r.student.ssim_vs_teacher, 1.0);
  EXPECT_DOUBLE_EQ(r.student.psnr, r.teacher.psnr);
  EXPECT_DOUBLE_EQ(r.student.ssim, r.teacher.ssim);
  EXPECT_EQ(r.student.macs, r.teacher.macs);
  ASSERT_TRUE(r.teacher.fid && r.student.fid && r.teacher.kid && r.student.kid);
  EXPECT_GT(*r.teacher.fid, 0.0);
  EXPECT_DOUBLE_EQ(*r.student.fid, *r.teacher.fid);
  EXPECT_DOUBLE_EQ(r.student.kid->mean, r.teacher.kid->mean);
  EXPECT_EQ(r.teacher.kid->subset_size, 3);
  EXPECT_EQ(r.student.kid->subsets, 5);
  const auto j = r.to_json();
  EXPECT_EQ(j["kid"]["student"]["subset_size"].get<int64_t>(), 3);
  EXPECT_DOUBLE_EQ(j["ratios"]["macs"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(j["fid"]["teacher"].get<double>(), *r.teacher.fid);
  EXPECT_NE(j["fid"]["real"].get<std::string>().find("4 truth images"), std::string::npos);

  // The same FID from real statistics saved to a file; KID then has no real features.
  TempDir tmp;
  // Stats of the generated images themselves: FID against them is ~0. Made by the code path
  // evaluate takes (the fast inference path, Inception batches of o.inception_batch), so the
  // features are the same numbers; another fp32 path could move a pixel by one level.
  ganlite::data::DatasetOptions d;
  d.transform.load_size = d.transform.crop_size = 28;
  d.transform.flip = false;
  const auto set = ganlite::data::open_aligned(f.paired, "test", d);
  auto teacher = ganlite::io::load_generator(f.teacher);
  teacher->eval();
  const ganlite::nn::InferenceRunner runner(*teacher);
  std::vector<torch::Tensor> outs;
  for (size_t i = 0; i < 4; ++i) {
    outs.push_back(metrics::quantize_to_uint8(ganlite::nn::translate_padded(
        [&](const torch::Tensor& x) { return runner.forward(x); }, set->get(i, 0).a.unsqueeze(0),
        ganlite::nn::size_multiple(teacher->config()))).squeeze(0));
  }
  auto net = metrics::load_fid_inception(o.inception, torch::kCPU);
  const auto features = metrics::inception_features(net, torch::stack(outs), o.inception_batch);
  const auto stats = metrics::compute_statistics(features);
  metrics::save_statistics(tmp / "gen.npz", stats);
  o.real_stats = (tmp / "gen.npz").string();
  const auto r2 = report::evaluate_teacher_student(f.teacher, f.teacher, o, torch::kCPU);
  ASSERT_TRUE(r2.teacher.fid.has_value());
  EXPECT_NEAR(*r2.teacher.fid, 0.0, 1e-3);
  EXPECT_FALSE(r2.teacher.kid.has_value());
  EXPECT_NE(r2.real_source.find("gen.npz"), std::string::npos);
}

TEST(Evaluate, UnpairedDataUsesTheTruthFolder) {
  const auto& f = report_fixture();
  auto o = fast_options(f.unpaired);
  o.task = "cyclegan";
  const auto r = report::evaluate_teacher_student(f.student, f.teacher, o, torch::kCPU);
  EXPECT_EQ(r.count, 3);
  EXPECT_EQ(r.split, "testA_truth");
  EXPECT_GT(r.teacher.psnr, 0.0);
  // The teacher (ngf 4 here) and student are swapped: the MAC ratio is below 1.
  EXPECT_LT(*report::ratio(static_cast<double>(r.teacher.macs), static_cast<double>(r.student.macs)), 1.0);
}

TEST(Evaluate, BadInputsNameTheProblem) {
  const auto& f = report_fixture();
  const auto expect_error = [&](const std::function<void()>& fn, const std::string& needle, bool usage) {
    try {
      fn();
      ADD_FAILURE() << "no error, expected one naming " << needle;
    } catch (const ganlite::UsageError& e) {
      EXPECT_TRUE(usage) << e.what();
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    } catch (const ganlite::Error& e) {
      EXPECT_FALSE(usage) << e.what();
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  // Paired layout asked of unpaired data: no test/ split.
  expect_error([&] { report::evaluate_teacher_student(f.teacher, f.student, fast_options(f.unpaired), torch::kCPU); },
               (f.unpaired / "test").string(), false);
  expect_error(
      [&] { report::evaluate_teacher_student(f.teacher, f.student, fast_options(f.dir / "absent"), torch::kCPU); },
      "absent", false);
  // Not a generator: a JSON file, and a missing file.
  const auto bogus = f.dir / "bogus.safetensors";
  ganlite::testing::write_text_file(bogus, "{\"not\": \"a checkpoint\"}");
  expect_error([&] { report::evaluate_teacher_student(bogus, f.student, fast_options(f.paired), torch::kCPU); },
               "bogus.safetensors", false);
  expect_error([&] {
    report::evaluate_teacher_student(f.teacher, f.dir / "nope.safetensors", fast_options(f.paired), torch::kCPU);
  }, "nope.safetensors", false);
  auto o = fast_options(f.paired);
  o.task = "gaugan";
  expect_error([&] { report::evaluate_teacher_student(f.teacher, f.student, o, torch::kCPU); }, "cyclegan", true);
  o = fast_options(f.paired);
  o.real_stats = "x.npz";
  expect_error([&] { report::evaluate_teacher_student(f.teacher, f.student, o, torch::kCPU); }, "--inception", true);
  o = fast_options(f.paired);
  o.inception = (f.dir / "no_inception.pth").string();
  expect_error([&] { report::evaluate_teacher_student(f.teacher, f.student, o, torch::kCPU); }, "no_inception.pth",
               false);
}

TEST(HtmlReport, SelfContainedPageWithTablesGridAndCurves) {
  const auto& f = report_fixture();
  auto o = fast_options(f.paired);
  o.grid_images = 3;
  const auto r = report::evaluate_teacher_student(f.teacher, f.student, o, torch::kCPU);
  const auto html = report::render_html_report(r);
  EXPECT_EQ(count_of(html, "<table id=\"summary\">"), 1);
  EXPECT_EQ(count_of(html, "<table class=\"model\""), 2);
  EXPECT_EQ(count_of(html, "<img "), 12);  // 3 rows x input | teacher | student | target
  EXPECT_EQ(count_of(html, "src=\"data:image/png;base64,"), 12);
  EXPECT_EQ(count_of(html, "<polyline"), 5);  // teacher: 4 losses + validation PSNR; student: none
  EXPECT_NE(html.find("is not in a run"), std::string::npos);
  EXPECT_NE(html.find(ganlite::nn::format_macs(r.teacher.macs)), std::string::npos);
  for (const char* key : {"params", "macs", "macs_profile", "latency", "psnr", "ssim", "psnr_vs_teacher",
                          "ssim_vs_teacher"}) {
    EXPECT_NE(html.find(std::string("data-key=\"") + key + "\""), std::string::npos) << key;
  }
  // The latency size is the evaluation size here: one latency row (test_report_units has both cases).
  EXPECT_EQ(html.find("data-key=\"latency_at_latency_size\""), std::string::npos);
  // Nothing external.
  EXPECT_EQ(html.find("href="), std::string::npos);
  EXPECT_EQ(html.find("src=\"http"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);

  // Written into a new folder (built aside, renamed) and over an existing one.
  TempDir tmp;
  const auto out = tmp / "nested" / "report";
  report::write_report(out, r);
  EXPECT_EQ(ganlite::testing::read_text_file(out / "index.html"), html);
  const auto j = nlohmann::json::parse(ganlite::testing::read_text_file(out / "report.json"));
  EXPECT_EQ(j["teacher"]["macs"].get<int64_t>(), r.teacher.macs);
  report::write_report(out, r);
  int entries = 0;
  for (const auto& e : fs::directory_iterator(tmp / "nested")) entries += e.is_directory() ? 1 : 0;
  EXPECT_EQ(entries, 1);  // no leftover temporary folder
  ganlite::testing::write_text_file(tmp / "afile", "x");
  EXPECT_THROW(report::write_report(tmp / "afile", r), ganlite::Error);
}
