// `ganlite bench` and `ganlite demo` end to end with tiny budgets.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "test_support.h"

namespace {

using ganlite::testing::run_cli;
using ganlite::testing::TempDir;

nlohmann::json last_json(const std::string& output) {
  const auto start = output.find('{');
  EXPECT_NE(start, std::string::npos) << output;
  return nlohmann::json::parse(output.substr(start));
}

TEST(BenchCli, ArchJsonHasTheFigures) {
  auto r = run_cli("bench --arch resnet --ngf 8 --n-blocks 2 --size 32 --runs 3 --warmup 1 --threads 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = last_json(r.output);
  EXPECT_GT(j.at("median_ms").get<double>(), 0.0);
  EXPECT_GE(j.at("p90_ms").get<double>(), j.at("median_ms").get<double>());
  EXPECT_GT(j.at("gflops").get<double>(), 0.0);
  EXPECT_GT(j.at("macs").get<int64_t>(), 0);
  EXPECT_EQ(j.at("precision"), "fp32");
  EXPECT_EQ(j.at("threads"), 1);
  // GFLOP/s is 2 x MACs / median time.
  EXPECT_NEAR(j.at("gflops").get<double>(),
              2.0 * j.at("macs").get<double>() / (j.at("median_ms").get<double>() * 1e6), 1e-6);
}

TEST(BenchCli, Bf16AndEagerPaths) {
  auto p = run_cli("bench --arch inception --ngf 8 --n-blocks 3 --size 16 --runs 1 --warmup 0 --precision bf16 --json");
  ASSERT_EQ(p.exit_code, 0) << p.output;
  EXPECT_EQ(last_json(p.output).at("precision"), "bf16");
  // The accuracy itself is tested on trained-like weights in test_nn (Bf16Above40dB); here the
  // figure must be reported.
  EXPECT_GT(last_json(p.output).at("psnr_vs_fp32").get<double>(), 40.0);
  auto e = run_cli("bench --arch unet --ngf 8 --num-downs 5 --size 32 --runs 1 --warmup 0 --eager --json");
  ASSERT_EQ(e.exit_code, 0) << e.output;
  EXPECT_EQ(last_json(e.output).at("path"), "eager");
}

TEST(BenchCli, BadInputsAreUsageErrors) {
  EXPECT_EQ(run_cli("bench --arch resnet --precision fp8").exit_code, 2);
  EXPECT_EQ(run_cli("bench --arch resnet --ngf 8 --size 30 --runs 1").exit_code, 2);  // not a multiple of 4
  EXPECT_EQ(run_cli("bench --arch resnet --ngf 8 --size 32 --runs 0").exit_code, 2);
  auto r = run_cli("bench --arch nope");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("inception"), std::string::npos) << r.output;  // names the valid values
}

TEST(DemoCli, TinyPipelineWritesReportAndOnnx) {
  TempDir dir;
  const auto out = dir / "demo";
  auto r = run_cli("demo --out '" + out.string() +
                   "' --size 32 --count 8 --test-count 2 --teacher-iters 2 --student-iters 2 --latency-runs 1 "
                   "--threads 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = last_json(r.output);
  EXPECT_TRUE(std::filesystem::exists(out / "report" / "index.html"));
  EXPECT_TRUE(std::filesystem::exists(out / "student_pruned.safetensors"));
  EXPECT_LT(j.at("student_macs").get<int64_t>(), j.at("teacher_macs").get<int64_t>() / 5);
  EXPECT_GT(j.at("student_latency_ms").get<double>(), 0.0);
  if (j.at("onnx").at("available").get<bool>()) {
    EXPECT_TRUE(std::filesystem::exists(out / "student.onnx"));
    EXPECT_LT(j.at("onnx").at("max_abs_diff_vs_ganlite").get<double>(), 1e-3);
  }
  // A second run into the same folder needs --force.
  auto again = run_cli("demo --out '" + out.string() + "' --size 32 --count 8 --teacher-iters 1 --student-iters 1");
  EXPECT_EQ(again.exit_code, 2) << again.output;
  EXPECT_NE(again.output.find("--force"), std::string::npos) << again.output;
}

}  // namespace
