// `ganlite bench` and `ganlite demo` end to end with tiny budgets.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "ganlite/io/checkpoint.h"
#include "ganlite/metrics/conv_peak.h"
#include "ganlite/nn/generator.h"
#include "ganlite/nn/inference.h"
#include "test_support.h"

namespace {

using ganlite::testing::run_cli;
using ganlite::testing::TempDir;

nlohmann::json last_json(const std::string& output) {
  const auto start = output.find('{');
  EXPECT_NE(start, std::string::npos) << output;
  return nlohmann::json::parse(output.substr(start));
}

// `ganlite bench` with its conv peak cache in `cache_home` (never the user's ~/.cache).
ganlite::testing::CommandResult bench(const std::string& args, const std::filesystem::path& cache_home) {
  return ganlite::testing::run_command("XDG_CACHE_HOME='" + cache_home.string() + "' '" + GANLITE_CLI_PATH +
                                       "' bench " + args);
}

const char* kTinyResnet = "--arch resnet --ngf 8 --n-blocks 2 --size 32 --runs 3 --warmup 1 --threads 1";

TEST(BenchCli, ArchJsonHasTheFigures) {
  TempDir cache;
  auto r = bench(std::string(kTinyResnet) + " --json", cache.path());
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
  // The CPU and its conv peak measured here, and the achieved fraction of it.
  EXPECT_FALSE(j.at("cpu_model").get<std::string>().empty());
  const double peak = j.at("peak_fp32_gflops").get<double>();
  EXPECT_GT(peak, 0.0);
  EXPECT_NEAR(j.at("fraction_of_peak").get<double>(), j.at("gflops").get<double>() / peak, 1e-12 * peak);
  EXPECT_EQ(j.at("peak_bf16_gflops").is_null(), !ganlite::metrics::native_bf16_convs());
  EXPECT_FALSE(j.at("peak_from_cache").get<bool>());
}

TEST(BenchCli, ConvPeakIsCachedPerCpuAndThreads) {
  TempDir cache;
  const auto file = cache / "ganlite" / "conv_peak.json";
  auto first = bench(std::string(kTinyResnet) + " --json", cache.path());
  ASSERT_EQ(first.exit_code, 0) << first.output;
  ASSERT_TRUE(std::filesystem::exists(file));
  const auto a = last_json(first.output);
  EXPECT_EQ(a.at("peak_cache"), file.string());
  auto second = bench(std::string(kTinyResnet) + " --json", cache.path());
  ASSERT_EQ(second.exit_code, 0) << second.output;
  const auto b = last_json(second.output);
  EXPECT_TRUE(b.at("peak_from_cache").get<bool>());
  EXPECT_EQ(b.at("peak_fp32_gflops"), a.at("peak_fp32_gflops"));
  EXPECT_EQ(b.at("peak_bf16_gflops"), a.at("peak_bf16_gflops"));
  const auto doc = nlohmann::json::parse(ganlite::testing::read_text_file(file));
  ASSERT_EQ(doc.at("entries").size(), 1u);
  EXPECT_EQ(doc["entries"][0]["threads"], 1);
  EXPECT_EQ(doc["entries"][0]["cpu_model"], a.at("cpu_model"));
  // --remeasure measures again; --no-cache neither reads nor writes the file.
  auto again = bench(std::string(kTinyResnet) + " --json --remeasure", cache.path());
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_FALSE(last_json(again.output).at("peak_from_cache").get<bool>());
  TempDir other;
  auto none = bench(std::string(kTinyResnet) + " --json --no-cache", other.path());
  ASSERT_EQ(none.exit_code, 0) << none.output;
  EXPECT_FALSE(last_json(none.output).at("peak_from_cache").get<bool>());
  EXPECT_FALSE(std::filesystem::exists(other / "ganlite"));
  EXPECT_EQ(bench(std::string(kTinyResnet) + " --no-cache --remeasure", other.path()).exit_code, 2);

  // The text names the CPU and the measured peak, not another machine's constant.
  auto text = bench(kTinyResnet, cache.path());
  ASSERT_EQ(text.exit_code, 0) << text.output;
  EXPECT_NE(text.output.find("CPU: " + a.at("cpu_model").get<std::string>()), std::string::npos) << text.output;
  EXPECT_NE(text.output.find("% of the measured fp32 conv peak"), std::string::npos) << text.output;
  EXPECT_EQ(text.output.find("AVX-512/AMX cores"), std::string::npos) << text.output;

  // A broken cache file is an error naming it; --remeasure replaces it.
  ganlite::testing::write_text_file(file, "{oops");
  auto broken = bench(kTinyResnet, cache.path());
  EXPECT_EQ(broken.exit_code, 1) << broken.output;
  EXPECT_NE(broken.output.find(file.string()), std::string::npos) << broken.output;
  EXPECT_EQ(bench(std::string(kTinyResnet) + " --remeasure", cache.path()).exit_code, 0);
  EXPECT_TRUE(nlohmann::json::parse(ganlite::testing::read_text_file(file)).contains("entries"));
}

TEST(BenchCli, Bf16AndEagerPaths) {
  TempDir cache;
  auto e = bench("--arch unet --ngf 8 --num-downs 5 --size 32 --runs 1 --warmup 0 --eager --json", cache.path());
  ASSERT_EQ(e.exit_code, 0) << e.output;
  EXPECT_EQ(last_json(e.output).at("path"), "eager");

  auto p = bench("--arch inception --ngf 8 --n-blocks 3 --size 16 --runs 1 --warmup 0 --precision bf16 --json",
                 cache.path());
  if (!ganlite::nn::bf16_convs_run(torch::kCPU)) {
    // Under ONEDNN_MAX_CPU_ISA=AVX2 (`make test-avx2`), or on a CPU without AVX-512, oneDNN has no
    // bf16 convs: refused as a usage error, naming the ISA limit when one is set.
    EXPECT_EQ(p.exit_code, 2) << p.output;
    EXPECT_NE(p.output.find("bf16"), std::string::npos) << p.output;
    if (!ganlite::metrics::onednn_isa_limit().empty()) {
      EXPECT_NE(p.output.find("ONEDNN_MAX_CPU_ISA"), std::string::npos) << p.output;
    }
    return;
  }
  ASSERT_EQ(p.exit_code, 0) << p.output;
  EXPECT_EQ(last_json(p.output).at("precision"), "bf16");
  // The accuracy itself is tested on trained-like weights in test_nn (Bf16Above40dB); here the
  // figure must be reported.
  EXPECT_GT(last_json(p.output).at("psnr_vs_fp32").get<double>(), 40.0);
}

// Issue 19: OpenCV DNN timed on the ONNX export of the same weights, and the OpenMP waiting policy
// reported: the executable's own bounded spin when the user set none (it re-executes itself to
// set it, src/cli/openmp_wait.cpp), the user's otherwise.
TEST(BenchCli, OnnxPathAndOpenMpWaiting) {
  TempDir dir;
  const auto model = (dir.path() / "g.safetensors").string();
  const auto onnx = (dir.path() / "g.onnx").string();
  ganlite::nn::ArchConfig c;
  c.arch = "resnet";
  c.ngf = 8;
  c.n_blocks = 2;
  ganlite::io::save_generator(model, *ganlite::nn::make_generator(c));
  auto x = run_cli("export --model " + model + " --out " + onnx + " --input-size 32 -q");
  ASSERT_EQ(x.exit_code, 0) << x.output;
  const std::string args = "--model " + model + " --onnx " + onnx + " --size 32 --runs 1 --warmup 0 --threads 1 --json";
  auto r = bench(args, dir.path());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = last_json(r.output);
  EXPECT_EQ(j.at("path"), "opencv-dnn");
  EXPECT_GT(j.at("median_ms").get<double>(), 0.0);
  EXPECT_EQ(bench(args + " --precision bf16", dir.path()).exit_code, 2);

  const std::string cli = std::string("'") + GANLITE_CLI_PATH + "' bench " + kTinyResnet + " --json";
  auto own = ganlite::testing::run_command("env -u GOMP_SPINCOUNT -u OMP_WAIT_POLICY XDG_CACHE_HOME='" +
                                           dir.path().string() + "' " + cli);
  ASSERT_EQ(own.exit_code, 0) << own.output;
  EXPECT_EQ(last_json(own.output).at("openmp_spin"), "GOMP_SPINCOUNT=1000 (ganlite's bounded spin)");
  auto user = ganlite::testing::run_command("env -u GOMP_SPINCOUNT OMP_WAIT_POLICY=PASSIVE XDG_CACHE_HOME='" +
                                            dir.path().string() + "' " + cli);
  ASSERT_EQ(user.exit_code, 0) << user.output;
  EXPECT_EQ(last_json(user.output).at("openmp_spin"), "OMP_WAIT_POLICY=PASSIVE (user)");
}

TEST(BenchCli, BadInputsAreUsageErrors) {
  EXPECT_EQ(run_cli("bench --arch resnet --precision fp8").exit_code, 2);
  EXPECT_EQ(run_cli("bench --arch resnet --ngf 8 --size 30 --runs 1").exit_code, 2);  // not a multiple of 4
  EXPECT_EQ(run_cli("bench --arch resnet --ngf 8 --size 32 --runs 0 --no-cache").exit_code, 2);
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
  // The demo times latency at its image size, the evaluation size: one latency row, not two.
  const auto html = ganlite::testing::read_text_file(out / "report" / "index.html");
  const std::string row = "Latency @ 32, median";
  size_t rows = 0;
  for (size_t at = html.find(row); at != std::string::npos; at = html.find(row, at + 1)) ++rows;
  EXPECT_EQ(rows, 1u);
  EXPECT_TRUE(std::filesystem::exists(out / "student_pruned.safetensors"));
  EXPECT_LT(j.at("student_macs").get<int64_t>(), j.at("teacher_macs").get<int64_t>() / 5);
  EXPECT_GT(j.at("student_latency_ms").get<double>(), 0.0);
  if (j.at("onnx").at("available").get<bool>()) {
    EXPECT_TRUE(std::filesystem::exists(out / "student.onnx"));
    EXPECT_LT(j.at("onnx").at("max_abs_diff_vs_ganlite").get<double>(), 1e-3);
  }
  // The goal check of issue 17 reports the figures it judged (a tiny run need not meet it).
  const auto& goal = j.at("goal");
  const double teacher_psnr = j.at("teacher_psnr").get<double>(), student_psnr = j.at("student_psnr").get<double>();
  EXPECT_EQ(goal.at("teacher_ok").get<bool>(), teacher_psnr >= 22.0);
  EXPECT_DOUBLE_EQ(goal.at("gap_db").get<double>(), teacher_psnr - student_psnr);
  EXPECT_EQ(goal.at("student_ok").get<bool>(), teacher_psnr - student_psnr <= 1.5);
  EXPECT_EQ(goal.at("macs_ok").get<bool>(),
            j.at("student_macs").get<int64_t>() * 10 <= j.at("teacher_macs").get<int64_t>());
  EXPECT_EQ(goal.at("met").get<bool>(), goal.at("teacher_ok").get<bool>() && goal.at("student_ok").get<bool>() &&
                                            goal.at("macs_ok").get<bool>());
  for (const char* stage : {"dataset", "teacher", "prune", "student", "evaluate", "onnx"}) {
    EXPECT_TRUE(j.at("stage_seconds").contains(stage)) << stage;
  }
  // The student's D starts from the teacher's, at the demo's D width.
  const auto student_config = nlohmann::json::parse(ganlite::testing::read_text_file(out / "student" / "config.json"));
  EXPECT_EQ(student_config.at("ndf").get<int>(), 32);
  EXPECT_EQ(student_config.at("distill").at("restore_d").get<std::string>(),
            (out / "teacher" / "checkpoints" / "latest_net_D.safetensors").string());
  EXPECT_DOUBLE_EQ(student_config.at("distill").at("lambda_gan").get<double>(), 0.1);
  // A second run into the same folder needs --force.
  auto again = run_cli("demo --out '" + out.string() + "' --size 32 --count 8 --teacher-iters 1 --student-iters 1");
  EXPECT_EQ(again.exit_code, 2) << again.output;
  EXPECT_NE(again.output.find("--force"), std::string::npos) << again.output;
}

TEST(DemoCli, BadBudgetsAreUsageErrors) {
  TempDir dir;
  const std::string out = " --out '" + (dir / "demo").string() + "'";
  EXPECT_EQ(run_cli("demo --batch-size 1" + out).exit_code, 2);  // KA needs two images per batch
  EXPECT_EQ(run_cli("demo --count 3" + out).exit_code, 2);        // fewer pairs than one batch
  EXPECT_EQ(run_cli("demo --lr 0" + out).exit_code, 2);
  EXPECT_EQ(run_cli("demo --ndf 0" + out).exit_code, 2);
  EXPECT_EQ(run_cli("demo --min-channels 0" + out).exit_code, 2);
  EXPECT_EQ(run_cli("demo --student-lambda-gan -1" + out).exit_code, 2);
  EXPECT_FALSE(std::filesystem::exists(dir / "demo" / "data"));  // refused before any work
}

}  // namespace
