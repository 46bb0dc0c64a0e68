// mIoU: the confusion matrix by hand, and a TorchScript segmenter end to end when
// /usr/bin/python3 has torch to script one.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <opencv2/imgcodecs.hpp>

#include "ganlite/metrics/miou.h"
#include "ganlite/util/error.h"
#include "test_support.h"

using ganlite::Error;
using ganlite::testing::TempDir;
namespace metrics = ganlite::metrics;

TEST(Miou, ConfusionMatrixByHand) {
  metrics::ConfusionMatrix m(4);
  m.add(torch::tensor({0, 1, 1, 2, 3}), torch::tensor({0, 1, 2, 255, 7}));  // 255 and 7 ignored
  const auto counts = m.counts();
  EXPECT_EQ(counts[0][0].item<int64_t>(), 1);
  EXPECT_EQ(counts[1][1].item<int64_t>(), 1);
  EXPECT_EQ(counts[2][1].item<int64_t>(), 1);
  EXPECT_EQ(counts.sum().item<int64_t>(), 3);
  const auto iou = m.per_class_iou();
  EXPECT_DOUBLE_EQ(iou[0], 1.0);
  EXPECT_DOUBLE_EQ(iou[1], 0.5);  // 1 / (1 label + 2 predictions - 1)
  EXPECT_DOUBLE_EQ(iou[2], 0.0);
  EXPECT_TRUE(std::isnan(iou[3]));  // absent everywhere: left out of the mean
  EXPECT_DOUBLE_EQ(m.mean_iou(), 0.5);
  // Accumulates across calls.
  m.add(torch::tensor({{2, 2}}), torch::tensor({{2, 2}}));
  EXPECT_DOUBLE_EQ(m.per_class_iou()[2], 2.0 / 3.0);
  EXPECT_THROW(m.add(torch::tensor({1, 2}), torch::tensor({1})), Error);
  EXPECT_THROW(metrics::ConfusionMatrix(0), ganlite::UsageError);
}

TEST(Miou, TorchScriptSegmenterEndToEnd) {
  if (!ganlite::testing::python_has_module("torch")) GTEST_SKIP() << "/usr/bin/python3 has no torch to script a model";
  TempDir dir;
  // Class 0 where red is bright, class 1 elsewhere; logits at half resolution, so they are
  // resized to the labels' size.
  ganlite::testing::write_text_file(dir / "make.py",
                                    "import torch, sys\n"
                                    "class Seg(torch.nn.Module):\n"
                                    "    def forward(self, x):\n"
                                    "        r = x[:, 0:1]\n"
                                    "        return torch.nn.functional.avg_pool2d(torch.cat([r, 1 - r], 1), 2)\n"
                                    "torch.jit.script(Seg()).save(sys.argv[1])\n");
  auto r = ganlite::testing::run_command(ganlite::testing::system_python() + " " + (dir / "make.py").string() + " " +
                                         (dir / "seg.pt").string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::filesystem::create_directories(dir / "images");
  std::filesystem::create_directories(dir / "labels");
  // a.png all red -> predicted 0 everywhere; label: left half 0, right half 1, top row ignored.
  cv::imwrite((dir / "images" / "a.png").string(), cv::Mat(8, 8, CV_8UC3, cv::Scalar(0, 0, 255)));
  cv::Mat la(8, 8, CV_8UC1, cv::Scalar(0));
  la(cv::Rect(4, 0, 4, 8)).setTo(1);
  la.row(0).setTo(255);
  cv::imwrite((dir / "labels" / "a.png").string(), la);
  // b.jpg black -> predicted 1 everywhere; label all 1, matched by stem.
  cv::imwrite((dir / "images" / "b.jpg").string(), cv::Mat(8, 8, CV_8UC3, cv::Scalar(0, 0, 0)));
  cv::imwrite((dir / "labels" / "b.png").string(), cv::Mat(8, 8, CV_8UC1, cv::Scalar(1)));
  metrics::MiouOptions options;
  options.classes = 2;
  const auto result = metrics::evaluate_segmentation(dir / "seg.pt", dir / "images", dir / "labels", options,
                                                     torch::kCPU, true);
  // Counted pixels: a: 28 label-0 (pred 0), 28 label-1 (pred 0); b: 64 label-1 (pred 1).
  // IoU0 = 28 / (28 + 56 - 28) = 0.5; IoU1 = 64 / (92 + 64 - 64) = 64 / 92.
  EXPECT_EQ(result.count, 2);
  ASSERT_EQ(result.per_class_iou.size(), 2u);
  EXPECT_NEAR(result.per_class_iou[0], 50.0, 1e-9);
  EXPECT_NEAR(result.per_class_iou[1], 6400.0 / 92.0, 1e-9);
  EXPECT_NEAR(result.miou, (50.0 + 6400.0 / 92.0) / 2, 1e-9);

  // Wrong class count: the error says what the model produced.
  options.classes = 3;
  try {
    metrics::evaluate_segmentation(dir / "seg.pt", dir / "images", dir / "labels", options, torch::kCPU, true);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--classes 3"), std::string::npos) << e.what();
  }
  // A missing label names the image.
  std::filesystem::remove(dir / "labels" / "b.png");
  options.classes = 2;
  try {
    metrics::evaluate_segmentation(dir / "seg.pt", dir / "images", dir / "labels", options, torch::kCPU, true);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("b.jpg"), std::string::npos) << e.what();
  }
}
