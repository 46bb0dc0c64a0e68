// The stats / fid / kid / miou commands: usage and runtime errors, and stats + fid end to end
// with random Inception weights on a few tiny images.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "ganlite/io/npz.h"
#include "inception_weights.h"
#include "test_support.h"

using ganlite::testing::run_cli;
using ganlite::testing::TempDir;

namespace {

std::string q(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

void write_images(const std::filesystem::path& dir, int count, int seed) {
  std::filesystem::create_directories(dir);
  torch::manual_seed(seed);
  for (int i = 0; i < count; ++i) {
    auto t = torch::randint(0, 256, {16, 16, 3}, torch::kUInt8);
    cv::Mat img(16, 16, CV_8UC3, t.data_ptr());
    cv::imwrite((dir / ("im" + std::to_string(i) + ".png")).string(), img);
  }
}

nlohmann::json last_json(const std::string& output) {
  const auto start = output.find('{');
  return nlohmann::json::parse(output.substr(start));
}

}  // namespace

TEST(MetricsCli, HelpForEveryCommand) {
  for (const char* cmd : {"stats", "fid", "kid", "miou"}) {
    auto r = run_cli(std::string(cmd) + " --help");
    EXPECT_EQ(r.exit_code, 0) << cmd << r.output;
    EXPECT_NE(r.output.find("--json"), std::string::npos) << cmd;
  }
}

TEST(MetricsCli, MissingWeightsFileIsRuntimeErrorNamingIt) {
  TempDir dir;
  write_images(dir / "imgs", 2, 0);
  for (const std::string& args : {"stats --images " + q(dir / "imgs") + " --out " + q(dir / "s.npz"),
                                 "fid --real " + q(dir / "imgs") + " --fake " + q(dir / "imgs"),
                                 "kid --real " + q(dir / "imgs") + " --fake " + q(dir / "imgs")}) {
    auto r = run_cli(args + " --inception " + q(dir / "no_such_inception.pth"));
    EXPECT_EQ(r.exit_code, 1) << args << "\n" << r.output;
    EXPECT_NE(r.output.find("no_such_inception.pth"), std::string::npos) << r.output;
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "s.npz"));
}

TEST(MetricsCli, BadFlagsAreUsageErrors) {
  EXPECT_EQ(run_cli("fid --real a --fake b --inception c --no-such-flag").exit_code, 2);
  EXPECT_EQ(run_cli("fid --fake b --inception c").exit_code, 2);  // --real missing
  EXPECT_EQ(run_cli("stats --images a --inception c --out x.npz --batch-size 0").exit_code, 2);
  EXPECT_EQ(run_cli("kid --real a --fake b --inception c --subset-size 1").exit_code, 2);
  EXPECT_EQ(run_cli("miou --segmenter m.pt --images a --labels b --classes 0").exit_code, 2);
  EXPECT_EQ(run_cli("miou --segmenter m.pt --images a --labels b --mean 0.1,0.2").exit_code, 2);
  auto r = run_cli("stats --images a --inception c --out x.npz --device tpu");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("tpu"), std::string::npos);
}

TEST(MetricsCli, MiouMissingSegmenterIsRuntimeError) {
  TempDir dir;
  write_images(dir / "imgs", 1, 0);
  auto r = run_cli("miou --segmenter " + q(dir / "missing_seg.pt") + " --images " + q(dir / "imgs") + " --labels " +
                   q(dir / "imgs"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("missing_seg.pt"), std::string::npos) << r.output;
}

TEST(MetricsCli, StatsThenFidEndToEnd) {
  TempDir dir;
  const auto weights = ganlite::testing::random_inception_weights();
  write_images(dir / "real", 3, 1);
  write_images(dir / "fake", 2, 2);
  auto r = run_cli("stats --images " + q(dir / "real") + " --inception " + q(weights) + " --out " +
                   q(dir / "real_stat.npz") + " --batch-size 2 --threads 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(last_json(r.output)["count"], 3);
  const auto arrays = ganlite::io::load_npz(dir / "real_stat.npz");
  EXPECT_EQ(arrays.at("mu").sizes(), (std::vector<int64_t>{2048}));
  EXPECT_EQ(arrays.at("sigma").sizes(), (std::vector<int64_t>{2048, 2048}));
  EXPECT_EQ(arrays.at("sigma").scalar_type(), torch::kFloat64);

  // Real images against their own statistics: 0; the same as a folder: also 0, with counts.
  // The same batch size as `stats`: the same code path, so the same features (batches of another
  // size may take other conv kernels, and FID then measures their fp32 rounding).
  r = run_cli("fid --real " + q(dir / "real_stat.npz") + " --fake " + q(dir / "real") + " --inception " + q(weights) +
              " --batch-size 2 --threads 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = last_json(r.output);
  EXPECT_NEAR(j["fid"].get<double>(), 0.0, 1e-4);
  EXPECT_EQ(j["real_count"], 0);
  EXPECT_EQ(j["fake_count"], 3);

  r = run_cli("fid --real " + q(dir / "real") + " --fake " + q(dir / "fake") + " --inception " + q(weights) + " --threads 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  j = last_json(r.output);
  EXPECT_GT(j["fid"].get<double>(), 0.0);
  EXPECT_EQ(j["real_count"], 3);
  EXPECT_EQ(j["fake_count"], 2);

  r = run_cli("kid --real " + q(dir / "real") + " --fake " + q(dir / "fake") + " --inception " + q(weights) +
              " --subsets 5 --threads 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  j = last_json(r.output);
  EXPECT_TRUE(j["kid_mean"].is_number());
  EXPECT_GE(j["kid_std"].get<double>(), 0.0);
  EXPECT_EQ(j["subset_size"], 2);
  EXPECT_EQ(j["real_count"], 3);
}
