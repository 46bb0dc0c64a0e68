// Building blocks of the report: base64, SVG plots, latency statistics, run-log curves.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <opencv2/imgcodecs.hpp>
#include <regex>
#include <thread>

#include "ganlite/metrics/latency.h"
#include "ganlite/report/base64.h"
#include "ganlite/report/evaluate.h"
#include "ganlite/report/html_report.h"
#include "ganlite/report/svg_plot.h"
#include "ganlite/util/error.h"

#include "test_support.h"
#include "report_fixture.h"

namespace report = ganlite::report;
namespace metrics = ganlite::metrics;

namespace {

using ganlite::testing::count_of;

// The points attribute of each polyline, as (x, y) pairs.
std::vector<std::vector<std::pair<double, double>>> polylines(const std::string& svg) {
  std::vector<std::vector<std::pair<double, double>>> out;
  const std::regex re("<polyline[^>]*points=\"([^\"]*)\"");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), re); it != std::sregex_iterator(); ++it) {
    std::vector<std::pair<double, double>> pts;
    std::istringstream in((*it)[1].str());
    std::string pair;
    while (in >> pair) {
      const auto comma = pair.find(',');
      pts.emplace_back(std::stod(pair.substr(0, comma)), std::stod(pair.substr(comma + 1)));
    }
    out.push_back(pts);
  }
  return out;
}

}  // namespace

TEST(Base64, KnownVectors) {
  // RFC 4648 section 10.
  EXPECT_EQ(report::base64_encode(""), "");
  EXPECT_EQ(report::base64_encode("f"), "Zg==");
  EXPECT_EQ(report::base64_encode("fo"), "Zm8=");
  EXPECT_EQ(report::base64_encode("foo"), "Zm9v");
  EXPECT_EQ(report::base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(report::base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(report::base64_encode("foobar"), "Zm9vYmFy");
  // High bytes must not sign-extend.
  EXPECT_EQ(report::base64_encode(std::string("\x00\xff\x10\xfb\xef", 5)), "AP8Q++8=");
}

TEST(Base64, PngDataUriDecodesToTheImage) {
  cv::Mat rgb(3, 2, CV_8UC3);
  for (int i = 0; i < 18; ++i) rgb.data[i] = static_cast<uchar>(i * 13);
  const auto uri = report::png_data_uri(rgb);
  const std::string prefix = "data:image/png;base64,";
  ASSERT_EQ(uri.rfind(prefix, 0), 0u);
  // Decode with a tiny reference decoder and check pixels (stored as BGR by PNG, read back as BGR).
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::vector<uchar> bytes;
  uint32_t buf = 0;
  int bits = 0;
  for (char c : uri.substr(prefix.size())) {
    if (c == '=') break;
    buf = (buf << 6) | static_cast<uint32_t>(alphabet.find(c));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push_back(static_cast<uchar>((buf >> bits) & 0xff));
    }
  }
  const cv::Mat bgr = cv::imdecode(bytes, cv::IMREAD_COLOR);
  ASSERT_EQ(bgr.rows, 3);
  ASSERT_EQ(bgr.cols, 2);
  EXPECT_EQ(bgr.at<cv::Vec3b>(0, 0)[2], rgb.at<cv::Vec3b>(0, 0)[0]);  // R
  EXPECT_EQ(bgr.at<cv::Vec3b>(2, 1)[0], rgb.at<cv::Vec3b>(2, 1)[2]);  // B
  EXPECT_THROW(report::png_data_uri(cv::Mat()), ganlite::Error);
}

TEST(SvgPlot, PointsAxesAndLabels) {
  report::PlotSeries a{"G_L1", {0, 10, 20, 30, 40}, {5, 4, 3, 2, 1}};
  report::PlotSeries b{"D<fake>", {0, 20, 40}, {0.5, 0.7, 0.6}};
  report::PlotOptions o;
  o.title = "losses";
  o.x_label = "step";
  o.y_label = "loss value";
  const auto svg = report::svg_line_plot({a, b}, o);
  const auto lines = polylines(svg);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].size(), 5u);
  EXPECT_EQ(lines[1].size(), 3u);
  // Decreasing loss: y grows downwards in SVG, x increases.
  for (size_t i = 1; i < lines[0].size(); ++i) {
    EXPECT_GT(lines[0][i].first, lines[0][i - 1].first);
    EXPECT_GT(lines[0][i].second, lines[0][i - 1].second);
  }
  // Both series share the x scale: x = 40 is at the same pixel.
  EXPECT_DOUBLE_EQ(lines[0].back().first, lines[1].back().first);
  EXPECT_NE(svg.find(">step</text>"), std::string::npos);
  EXPECT_NE(svg.find(">loss value</text>"), std::string::npos);
  EXPECT_NE(svg.find(">losses</text>"), std::string::npos);
  EXPECT_NE(svg.find("data-name=\"D&lt;fake&gt;\""), std::string::npos);  // escaped
  EXPECT_EQ(svg.find("D<fake>"), std::string::npos);
  // Tick labels: y from 0 to 5 in steps of 1, x ticks at multiples of 10 up to 40.
  for (const char* tick : {">0</text>", ">1</text>", ">5</text>", ">40</text>"}) {
    EXPECT_NE(svg.find(tick), std::string::npos) << tick;
  }
  EXPECT_GE(count_of(svg, "class=\"ytick\""), 5);
  EXPECT_GE(count_of(svg, "class=\"xtick\""), 4);
  EXPECT_EQ(count_of(svg, "class=\"legend\""), 2);
}

TEST(SvgPlot, SkipsNonFiniteAndReducesLongSeries) {
  report::PlotSeries s{"x", {}, {}};
  for (int i = 0; i < 1000; ++i) {
    s.x.push_back(i);
    s.y.push_back(i == 7 ? std::nan("") : i);
  }
  report::PlotOptions o;
  o.max_points = 100;
  auto lines = polylines(report::svg_line_plot({s}, o));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].size(), 100u);
  o.max_points = 2000;
  lines = polylines(report::svg_line_plot({s}, o));
  EXPECT_EQ(lines[0].size(), 999u);  // the NaN point is dropped
}

TEST(SvgPlot, EmptyAndConstantSeries) {
  const auto empty = report::svg_line_plot({report::PlotSeries{"a", {}, {}}}, {});
  EXPECT_TRUE(polylines(empty).empty());
  EXPECT_NE(empty.find("no data"), std::string::npos);
  const auto flat = report::svg_line_plot({report::PlotSeries{"a", {1, 2}, {3, 3}}}, {});
  const auto lines = polylines(flat);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0][0].second, lines[0][1].second);
  EXPECT_EQ(flat.find("nan"), std::string::npos);
  EXPECT_EQ(flat.find("inf"), std::string::npos);
}

TEST(Latency, QuantileInterpolatesLikeNumpy) {
  EXPECT_DOUBLE_EQ(metrics::quantile({3, 1, 2}, 0.5), 2.0);
  EXPECT_DOUBLE_EQ(metrics::quantile({4, 1, 3, 2}, 0.5), 2.5);
  // numpy.percentile([1..10], 90) = 9.1
  EXPECT_NEAR(metrics::quantile({10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, 0.9), 9.1, 1e-12);
  EXPECT_DOUBLE_EQ(metrics::quantile({7}, 0.9), 7.0);
  EXPECT_THROW(metrics::quantile({}, 0.5), ganlite::Error);
}

TEST(Latency, CallsWarmupPlusRunsAndTimesThem) {
  int calls = 0;
  metrics::LatencyOptions o;
  o.warmup = 2;
  o.runs = 5;
  const auto r = metrics::measure_latency(
      [&] {
        ++calls;
        std::this_thread::sleep_for(std::chrono::milliseconds(3));
      },
      torch::kCPU, 4, o);
  EXPECT_EQ(calls, 7);
  EXPECT_EQ(r.samples_ms.size(), 5u);
  EXPECT_GE(r.median_ms, 3.0);
  EXPECT_GE(r.p90_ms, r.median_ms);
  EXPECT_GE(r.median_ms, r.min_ms);
  EXPECT_NEAR(r.images_per_second, 4 * 1000.0 / r.median_ms, 1e-9);
  o.runs = 0;
  EXPECT_THROW(metrics::measure_latency([] {}, torch::kCPU, 1, o), ganlite::UsageError);
  o.runs = 1;
  EXPECT_THROW(metrics::measure_latency([] {}, torch::kCPU, 0, o), ganlite::UsageError);
}

TEST(Latency, InterleavesRoundsAndKeepsResultsApart) {
  std::string calls;
  metrics::LatencyOptions o;
  o.warmup = 1;
  o.runs = 3;
  const auto r = metrics::measure_latency_interleaved(
      {[&] { calls += 'a'; },
       [&] {
         calls += 'b';
         std::this_thread::sleep_for(std::chrono::milliseconds(4));
       }},
      torch::kCPU, 1, o);
  EXPECT_EQ(calls, "abababab");
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].samples_ms.size(), 3u);
  EXPECT_EQ(r[1].samples_ms.size(), 3u);
  EXPECT_GE(r[1].min_ms, 4.0);
  EXPECT_LT(r[0].median_ms, r[1].median_ms);
}

TEST(Latency, GeneratorAtAnySizeRestoresMode) {
  auto g = ganlite::nn::make_generator(ganlite::testing::tiny_arch());
  g->train();
  metrics::LatencyOptions o;
  o.warmup = 1;
  o.runs = 2;
  const auto r = metrics::measure_generator_latency(*g, 30, 2, torch::kCPU, o);  // 30: padded to 32
  EXPECT_EQ(r.size, 30);
  EXPECT_EQ(r.batch, 2);
  EXPECT_GT(r.median_ms, 0.0);
  EXPECT_TRUE(g->is_training());
}

TEST(RunCurves, ReadsLossesAndValidationSkippingTornLines) {
  const auto& f = ganlite::testing::report_fixture();
  const auto c = report::load_run_curves(f.teacher);
  EXPECT_EQ(c.run_dir, f.teacher.parent_path().parent_path().string());
  EXPECT_TRUE(c.note.empty()) << c.note;
  ASSERT_EQ(c.losses.size(), 4u);  // G_GAN G_L1 D_real D_fake; not step/epoch/lr/wall_seconds
  const auto l1 = std::find_if(c.losses.begin(), c.losses.end(), [](const auto& s) { return s.name == "G_L1"; });
  ASSERT_NE(l1, c.losses.end());
  EXPECT_EQ(l1->x, (std::vector<double>{10, 20, 30, 40, 50}));
  EXPECT_DOUBLE_EQ(l1->y[0], 19.0);
  ASSERT_EQ(c.validation.size(), 1u);
  EXPECT_EQ(c.validation[0].x, (std::vector<double>{1, 2}));

  const auto loose = report::load_run_curves(f.student);
  EXPECT_TRUE(loose.losses.empty());
  EXPECT_NE(loose.note.find("student_net_G.safetensors"), std::string::npos) << loose.note;
  // An explicit run folder without logs says which file is missing.
  const auto missing = report::load_run_curves(f.student, (f.dir / "nowhere").string());
  EXPECT_NE(missing.note.find("metrics.jsonl"), std::string::npos) << missing.note;
}

namespace {

// A report built by hand (no evaluation): evaluation size 32, latency size `latency_size`.
report::EvalReport hand_made_report(int latency_size) {
  report::EvalReport r;
  r.options.data = "data";
  r.options.latency_size = latency_size;
  r.options.profile_size = 256;
  r.device = "cpu";
  r.threads = 1;
  r.split = "test (B)";
  r.count = 2;
  r.size = 32;
  for (auto* m : {&r.teacher, &r.student}) {
    m->arch.ngf = m == &r.teacher ? 8 : 4;
    m->macs = m == &r.teacher ? 4000000 : 1000000;
    m->params = m->macs / 100;
    m->latency.median_ms = m == &r.teacher ? 4.0 : 1.0;
    m->latency.p90_ms = m->latency.median_ms * 1.5;
    m->latency.samples_ms = {m->latency.median_ms};
    m->latency_at_size = m->latency;
    if (latency_size != r.size) {
      m->latency_at_size.median_ms *= 3;
      m->latency_at_size.p90_ms *= 3;
    }
  }
  r.student.psnr_vs_teacher = 30.0;
  r.student.ssim_vs_teacher = 0.9;
  return r;
}

}  // namespace

TEST(HtmlReport, LatencyAtTheEvaluationSizeIsOneRow) {
  // latency_size == evaluation size: one measurement, so one row (it was printed twice).
  const auto same = report::render_html_report(hand_made_report(32));
  EXPECT_EQ(count_of(same, "Latency @ 32, median"), 1) << same;
  EXPECT_EQ(count_of(same, "data-key=\"latency_at_latency_size\""), 0);
  EXPECT_EQ(count_of(same, "data-key=\"latency\""), 1);
  EXPECT_EQ(count_of(same, "4.00 / 6.00"), 1);  // the teacher's median / p90, once
  // A different latency size: both rows, each with its own figures.
  const auto other = report::render_html_report(hand_made_report(64));
  EXPECT_EQ(count_of(other, "Latency @ 32, median"), 1);
  EXPECT_EQ(count_of(other, "Latency @ 64, median"), 1);
  EXPECT_EQ(count_of(other, "4.00 / 6.00"), 1);
  EXPECT_EQ(count_of(other, "12.00 / 18.00"), 1);
}

TEST(FormatFraction, ReciprocalsOfWholeNumbersElsePercent) {
  EXPECT_EQ(report::format_fraction(0.1), "1/10");
  EXPECT_EQ(report::format_fraction(0.5), "1/2");
  EXPECT_EQ(report::format_fraction(0.25), "1/4");
  EXPECT_EQ(report::format_fraction(1.0 / 3.0), "1/3");
  EXPECT_EQ(report::format_fraction(0.001), "1/1000");
  EXPECT_EQ(report::format_fraction(0.3), "30%");
  EXPECT_EQ(report::format_fraction(0.15), "15%");
  EXPECT_EQ(report::format_fraction(0.125), "1/8");
  EXPECT_EQ(report::format_fraction(0.0625 * 3), "18.8%");
  EXPECT_EQ(report::format_fraction(0.0001), "0.01%");  // 1/10000: past the reciprocal range
  EXPECT_EQ(report::format_fraction(0.7), "70%");
  EXPECT_EQ(report::format_fraction(0.1001), "10%");  // 1/9.99: not a whole reciprocal
}
