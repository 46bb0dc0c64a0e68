#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "ganlite/data/image_io.h"
#include "ganlite/io/onnx_export.h"
#include "test_support.h"

using ganlite::testing::run_cli;
using ganlite::testing::TempDir;

namespace {
std::string q(const std::filesystem::path& p) { return "'" + p.string() + "'"; }
}  // namespace

// The whole interop path a user takes, through the CLI: a .pth trained with the public code ->
// import -> prune -> distill a few iterations -> export -> run the .onnx in OpenCV DNN.
TEST(RoundTripCli, ImportPruneDistillExportRunInOpenCv) {
  if (!ganlite::io::onnx_export_available()) GTEST_SKIP() << "built without libonnx";
  TempDir dir;
  const auto pth = std::filesystem::path(GANLITE_FIXTURES_DIR) / "interop" / "resnet_pix2pix_batch.pth";
  auto r = run_cli("import --checkpoint " + q(pth) + " --arch resnet --out " + q(dir / "teacher.safetensors") + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;

  r = run_cli("profile --model " + q(dir / "teacher.safetensors") + " --input-size 32 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto teacher_macs = nlohmann::json::parse(r.output)["macs"].get<int64_t>();
  r = run_cli("prune --teacher " + q(dir / "teacher.safetensors") + " --target-macs " +
              std::to_string(teacher_macs * 6 / 10) + " --input-size 32 --min-channels 2 --out " +
              q(dir / "student.safetensors") + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_LE(nlohmann::json::parse(r.output)["macs_after"].get<int64_t>(), teacher_macs * 6 / 10);

  r = run_cli("make-dataset --kind edges2shapes --count 4 --test-count 2 --size 32 --seed 3 --threads 1 -q --out " +
              q(dir / "data"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_cli("distill --method ka --teacher " + q(dir / "teacher.safetensors") + " --student " +
              q(dir / "student.safetensors") + " --task pix2pix --data " + q(dir / "data") +
              " --load-size 32 --crop-size 32 --batch-size 2 --max-iters 3 --threads 1 -q --out " + q(dir / "run"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto distilled = dir / "run" / "checkpoints" / "latest_net_G.safetensors";
  ASSERT_TRUE(std::filesystem::exists(distilled));

  // export verifies the .onnx in OpenCV DNN against LibTorch itself and fails when they differ.
  r = run_cli("export --model " + q(distilled) + " --format onnx --dynamic-size --input-size 32 --out " +
              q(dir / "student.onnx") + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::vector<std::pair<std::filesystem::path, std::string>> runs{{distilled, "out_libtorch"},
                                                                          {dir / "student.onnx", "out_onnx"}};
  for (const auto& [model, out] : runs) {
    r = run_cli("translate --model " + q(model) + " --input " + q(dir / "data" / "test") + " --out " + q(dir / out) +
                " --threads 1 -q");
    ASSERT_EQ(r.exit_code, 0) << model << ": " << r.output;
  }
  for (const auto& file : ganlite::data::list_images(dir / "data" / "test")) {
    const auto name = file.stem().string() + ".png";
    const auto a = ganlite::data::read_image_rgb(dir / "out_libtorch" / name);
    const auto b = ganlite::data::read_image_rgb(dir / "out_onnx" / name);
    cv::Mat diff;
    cv::absdiff(a, b, diff);
    double max_diff = 0;
    cv::minMaxLoc(diff.reshape(1), nullptr, &max_diff);
    EXPECT_LE(max_diff, 1.0) << name;
  }
}
