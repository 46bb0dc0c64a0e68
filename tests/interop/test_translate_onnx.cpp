#include <gtest/gtest.h>
#include <torch/torch.h>

#include <opencv2/core.hpp>

#include "ganlite/data/image_io.h"
#include "ganlite/io/checkpoint.h"
#include "ganlite/io/onnx_export.h"
#include "ganlite/nn/generator.h"
#include "test_support.h"

using namespace ganlite;
using ganlite::testing::run_cli;
using ganlite::testing::TempDir;

TEST(TranslateOnnx, ExportedModelTranslatesLikeTheCheckpoint) {
  if (!io::onnx_export_available()) GTEST_SKIP() << "built without libonnx";
  TempDir dir;
  nn::ArchConfig c;
  c.arch = "resnet";
  c.ngf = 4;
  c.n_blocks = 2;
  c.norm = "instance";
  torch::manual_seed(3);
  auto g = nn::make_generator(c);
  const auto model = dir / "g.safetensors";
  io::save_generator(model, *g);
  auto r = run_cli("export --model '" + model.string() + "' --format onnx --dynamic-size --input-size 32 --out '" +
                   (dir / "g.onnx").string() + "' --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;

  std::filesystem::create_directories(dir / "in");
  cv::Mat image(30, 42, CV_8UC3);  // not a multiple of 4: padded and cropped back
  cv::randu(image, cv::Scalar::all(0), cv::Scalar::all(255));
  data::write_image_rgb(dir / "in" / "x.png", image);

  for (const std::string name : {"g.safetensors", "g.onnx"}) {
    r = run_cli("translate --model '" + (dir / name).string() + "' --input '" + (dir / "in").string() + "' --out '" +
                (dir / ("out_" + name)).string() + "' --threads 1");
    ASSERT_EQ(r.exit_code, 0) << name << ": " << r.output;
  }
  const auto a = data::read_image_rgb(dir / "out_g.safetensors" / "x.png");
  const auto b = data::read_image_rgb(dir / "out_g.onnx" / "x.png");
  ASSERT_EQ(a.size(), cv::Size(42, 30));
  ASSERT_EQ(b.size(), a.size());
  cv::Mat diff;
  cv::absdiff(a, b, diff);
  double max_diff = 0;
  cv::minMaxLoc(diff.reshape(1), nullptr, &max_diff);
  EXPECT_LE(max_diff, 1.0);  // at most one grey level of rounding
}
