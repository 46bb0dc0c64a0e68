// `ganlite eval` through the built binary: the report folder, --json, exit codes for bad inputs,
// and the page as a browser renders it (headless Chromium, skipped when not installed).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <set>

#include "report_fixture.h"

namespace fs = std::filesystem;
using ganlite::testing::report_fixture;
using ganlite::testing::run_cli;
using ganlite::testing::run_command;
using ganlite::testing::TempDir;

namespace {

std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

std::string fast_flags() { return " --latency-size 32 --latency-runs 2 --latency-warmup 1 --threads 1"; }

std::string eval_args(const fs::path& teacher, const fs::path& student, const fs::path& data, const fs::path& out) {
  return "eval --teacher " + q(teacher) + " --student " + q(student) + " --data " + q(data) + " --out " + q(out) +
         fast_flags();
}

// One report for the tests that only read it.
const fs::path& cli_report() {
  static TempDir dir;
  static const fs::path out = [] {
    const auto& f = report_fixture();
    const auto r = run_cli(eval_args(f.teacher, f.student, f.paired, dir / "report") + " --grid 3");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return dir / "report";
  }();
  return out;
}

using ganlite::testing::count_of;

}  // namespace

TEST(EvalCli, HelpListsTheOptions) {
  const auto r = run_cli("eval --help");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (const char* flag : {"--teacher", "--student", "--data", "--out", "--inception", "--real-stats", "--task",
                           "--direction", "--max-images", "--size", "--latency-size", "--device", "--json"}) {
    EXPECT_NE(r.output.find(flag), std::string::npos) << flag;
  }
  EXPECT_NE(run_cli("--help").output.find("eval"), std::string::npos);
}

TEST(EvalCli, WritesReportAndPrintsJson) {
  const auto& f = report_fixture();
  TempDir dir;
  const auto r = run_cli(eval_args(f.teacher, f.student, f.paired, dir / "rep") + " --max-images 3 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  EXPECT_EQ(j["data"]["count"].get<int>(), 3);
  EXPECT_EQ(j["report"].get<std::string>(), (dir / "rep" / "index.html").string());
  for (const char* key : {"macs", "params", "psnr", "ssim", "latency_ms"}) {
    EXPECT_TRUE(j["teacher"].contains(key)) << key;
    EXPECT_TRUE(j["student"].contains(key)) << key;
  }
  EXPECT_TRUE(j["student"].contains("psnr_vs_teacher"));
  EXPECT_GT(j["student"]["latency_ms"]["median"].get<double>(), 0.0);
  const auto file = nlohmann::json::parse(ganlite::testing::read_text_file(dir / "rep" / "report.json"));
  EXPECT_EQ(file["student"]["psnr"], j["student"]["psnr"]);
  EXPECT_EQ(file["teacher"]["macs"], j["teacher"]["macs"]);
  EXPECT_TRUE(fs::is_regular_file(dir / "rep" / "index.html"));
}

TEST(EvalCli, RunFoldersGivenExplicitly) {
  const auto& f = report_fixture();
  TempDir dir;
  const auto r = run_cli(eval_args(f.teacher, f.student, f.paired, dir / "rep") + " --max-images 2 --json" +
                         " --student-run " + q(f.teacher.parent_path().parent_path()));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  EXPECT_EQ(j["curves"]["student"]["losses"].size(), 4u);
  const auto html = ganlite::testing::read_text_file(dir / "rep" / "index.html");
  EXPECT_EQ(count_of(html, "<polyline"), 10);
}

TEST(EvalCli, LatencyAtTheEvaluationSizeIsReportedOnce) {
  // --latency-size 32 is the evaluation size: one measurement, one row in the page; report.json
  // keeps both documented names, holding the same figures.
  const auto html = ganlite::testing::read_text_file(cli_report() / "index.html");
  EXPECT_EQ(count_of(html, "Latency @ 32, median"), 1) << html.substr(0, 4000);
  EXPECT_EQ(count_of(html, "data-key=\"latency_at_latency_size\""), 0);
  const auto j = nlohmann::json::parse(ganlite::testing::read_text_file(cli_report() / "report.json"));
  EXPECT_EQ(j["data"]["size"], 32);
  EXPECT_EQ(j["latency_size"], 32);
  EXPECT_EQ(j["student"]["latency_ms_at_latency_size"], j["student"]["latency_ms"]);
  EXPECT_EQ(j["teacher"]["latency_ms_at_latency_size"], j["teacher"]["latency_ms"]);

  // Another latency size: a second row, measured separately.
  const auto& f = report_fixture();
  TempDir dir;
  const auto r = run_cli("eval --teacher " + q(f.teacher) + " --student " + q(f.student) + " --data " + q(f.paired) +
                         " --out " + q(dir / "rep") +
                         " --latency-size 16 --latency-runs 2 --latency-warmup 1 --threads 1 --max-images 1 --grid 0");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto other = ganlite::testing::read_text_file(dir / "rep" / "index.html");
  EXPECT_EQ(count_of(other, "Latency @ 32, median"), 1);
  EXPECT_EQ(count_of(other, "Latency @ 16, median"), 1);
  const auto k = nlohmann::json::parse(ganlite::testing::read_text_file(dir / "rep" / "report.json"));
  EXPECT_EQ(k["student"]["latency_ms_at_latency_size"]["size"], 16);
  EXPECT_EQ(k["student"]["latency_ms"]["size"], 32);
}

TEST(EvalCli, BadInputsExitWithCodesAndNames) {
  const auto& f = report_fixture();
  TempDir dir;
  // Runtime errors (exit 1) naming the input.
  auto r = run_cli(eval_args(f.teacher, f.student, f.unpaired, dir / "a"));  // no test/ split
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find((f.unpaired / "test").string()), std::string::npos) << r.output;
  r = run_cli(eval_args(f.teacher, f.student, f.paired, dir / "a") + " --task cyclegan");  // no testA_truth
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("testA_truth"), std::string::npos) << r.output;
  const auto bogus = dir / "bogus.safetensors";
  ganlite::testing::write_text_file(bogus, "not a model");
  r = run_cli(eval_args(bogus, f.student, f.paired, dir / "a"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("bogus.safetensors"), std::string::npos) << r.output;
  ganlite::testing::write_text_file(dir / "occupied", "x");
  r = run_cli(eval_args(f.teacher, f.student, f.paired, dir / "occupied") + " --max-images 2");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("occupied"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir / "a"));
  // Usage errors (exit 2).
  r = run_cli(eval_args(f.teacher, f.student, f.paired, dir / "a") + " --task gaugan");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("cyclegan"), std::string::npos) << r.output;
  EXPECT_EQ(run_cli("eval --student " + q(f.student) + " --data " + q(f.paired) + " --out x").exit_code, 2);
  EXPECT_EQ(run_cli(eval_args(f.teacher, f.student, f.paired, dir / "a") + " --size 8").exit_code, 2);
  EXPECT_EQ(run_cli(eval_args(f.teacher, f.student, f.paired, dir / "a") + " --device tpu").exit_code, 2);
  EXPECT_FALSE(fs::exists(dir / "a"));
}

TEST(EvalCli, RendersInHeadlessChromium) {
  if (!fs::exists("/usr/bin/chromium")) GTEST_SKIP() << "chromium not installed (apt-get install chromium)";
  const auto index = cli_report() / "index.html";
  ASSERT_TRUE(fs::exists(index));
  const std::string script = std::string(GANLITE_SOURCE_DIR) + "/scripts/render_report.sh";

  // The DOM after loading: the table rows and every image are there.
  const auto dom = run_command("'" + script + "' --dump-dom " + q(index));
  ASSERT_EQ(dom.exit_code, 0) << dom.output.substr(0, 2000);
  EXPECT_NE(dom.output.find("<table id=\"summary\">"), std::string::npos);
  EXPECT_GE(count_of(dom.output, "<tr data-key="), 9);
  EXPECT_EQ(count_of(dom.output, "<img "), 12);
  EXPECT_EQ(count_of(dom.output, "<polyline"), 5);

  TempDir dir;
  const auto png = dir / "page.png";
  const auto shot = run_command("'" + script + "' " + q(index) + " " + q(png) + " 1200 1600");
  ASSERT_EQ(shot.exit_code, 0) << shot.output;
  const cv::Mat img = cv::imread(png.string(), cv::IMREAD_COLOR);
  ASSERT_FALSE(img.empty()) << png;
  EXPECT_EQ(img.cols, 1200);
  EXPECT_EQ(img.rows, 1600);
  // Not blank: many distinct colours (table header, text, sample images, plot lines).
  std::set<uint32_t> colours;
  for (int y = 0; y < img.rows; y += 2) {
    for (int x = 0; x < img.cols; x += 2) {
      const auto p = img.at<cv::Vec3b>(y, x);
      colours.insert((p[0] << 16) | (p[1] << 8) | p[2]);
    }
  }
  EXPECT_GT(colours.size(), 200u);
  // The summary table region (top of the page) is not uniform: it holds dark text and the header.
  cv::Mat gray;
  cv::cvtColor(img(cv::Rect(0, 0, 900, 400)), gray, cv::COLOR_BGR2GRAY);
  double lo = 0, hi = 0;
  cv::minMaxLoc(gray, &lo, &hi);
  EXPECT_LT(lo, 80);
  EXPECT_GT(hi, 200);
  cv::Scalar mean, stddev;
  cv::meanStdDev(gray, mean, stddev);
  EXPECT_GT(stddev[0], 20.0);
  // Keep a copy for a human to look at when asked.
  if (const char* keep = std::getenv("GANLITE_KEEP_SCREENSHOT")) fs::copy_file(png, keep, fs::copy_options::overwrite_existing);
}
