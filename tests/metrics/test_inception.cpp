// The FID Inception-v3: architecture size, loading through .pth with key checks, feature
// extraction in memory and from files.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "ganlite/io/pth.h"
#include "ganlite/metrics/image_quality.h"
#include "ganlite/metrics/inception.h"
#include "ganlite/util/error.h"
#include "inception_weights.h"
#include "test_support.h"
#include "tolerance.h"

using ganlite::Error;
using ganlite::testing::TempDir;
namespace metrics = ganlite::metrics;

TEST(Inception, ParameterCountMatchesTorchvisionWithout_AuxAnd1008Classes) {
  metrics::FidInceptionV3 net;
  int64_t params = 0;
  for (const auto& p : net->parameters()) params += p.numel();
  // torchvision inception_v3: 27,161,264 with AuxLogits (3,326,696) and a 1000-way fc; the FID
  // variant has no AuxLogits and a 1008-way fc (+16,392).
  EXPECT_EQ(params, 23850960);
  const auto keys = net->named_parameters();
  EXPECT_TRUE(keys.contains("Conv2d_1a_3x3.conv.weight"));
  EXPECT_TRUE(keys.contains("Mixed_7c.branch3x3dbl_3b.bn.bias"));
  EXPECT_TRUE(keys.contains("Mixed_6e.branch7x7dbl_5.conv.weight"));
  EXPECT_TRUE(keys.contains("fc.weight"));
  EXPECT_EQ(net->named_buffers()["Mixed_5b.branch_pool.bn.running_var"].numel(), 32);
  EXPECT_DOUBLE_EQ(net->Conv2d_1a_3x3->bn->options.eps(), 1e-3);
}

TEST(Inception, LoadedWeightsReproduceTheSourceNetwork) {
  auto source = ganlite::testing::random_inception(0);
  auto loaded = metrics::load_fid_inception(ganlite::testing::random_inception_weights(), torch::kCPU);
  torch::manual_seed(5);
  const auto images = torch::rand({2, 3, 32, 40}) * 2 - 1;  // [-1, 1], quantised inside
  const auto a = metrics::inception_features(source, images, 2);
  const auto b = metrics::inception_features(loaded, images, 1);
  ASSERT_EQ(a.sizes(), (std::vector<int64_t>{2, 2048}));
  EXPECT_EQ(a.scalar_type(), torch::kFloat64);
  EXPECT_TRUE(torch::isfinite(a).all().item<bool>());
  EXPECT_GT(a.abs().sum().item<double>(), 0.0);
  // Batches of 2 and 1 may take other conv kernels (LibTorch routes convs by batch size): two fp32
  // evaluations of the network (tests/tolerance.h).
  const double bound = ganlite::testing::fp32_network_tolerance(*loaded, ganlite::testing::max_abs(a));
  ganlite::testing::expect_close(b, a, bound, "batch 1 vs batch 2");
  // Float images are quantised to uint8 first: the uint8 version gives the same features.
  const auto c = metrics::inception_features(loaded, metrics::quantize_to_uint8(images), 2);
  ganlite::testing::expect_close(c, b, bound, "uint8 vs float images");
  // Different images give different features (the network is not degenerate), beyond the bound.
  const auto d = metrics::inception_features(loaded, images.flip(3), 2);
  EXPECT_FALSE(ganlite::testing::max_abs_diff_within(d, b, bound));
}

TEST(Inception, MissingUnexpectedAndMisshapenKeysAreNamed) {
  TempDir dir;
  auto net = ganlite::testing::random_inception(1);
  auto sd = ganlite::testing::state_of(net);
  auto expect_error = [&](const ganlite::io::NamedTensors& tensors, const std::string& key) {
    ganlite::io::save_pth_state_dict(dir / "w.pth", tensors);
    try {
      metrics::load_fid_inception(dir / "w.pth", torch::kCPU);
      ADD_FAILURE() << "expected Error naming " << key;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("'" + key + "'"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("w.pth"), std::string::npos) << e.what();
    }
  };
  auto missing = sd;
  missing.erase(std::find_if(missing.begin(), missing.end(),
                             [](const auto& kv) { return kv.first == "Mixed_6b.branch7x7_2.conv.weight"; }));
  expect_error(missing, "Mixed_6b.branch7x7_2.conv.weight");
  auto extra = sd;
  extra.emplace_back("AuxLogits.fc.weight", torch::zeros({2}));
  expect_error(extra, "AuxLogits.fc.weight");
  auto misshapen = sd;
  misshapen[0].second = torch::zeros({1});
  expect_error(misshapen, misshapen[0].first);
}

TEST(Inception, FileFeaturesMatchInMemoryFeatures) {
  TempDir dir;
  auto net = metrics::load_fid_inception(ganlite::testing::random_inception_weights(), torch::kCPU);
  torch::manual_seed(2);
  std::vector<std::filesystem::path> files;
  std::vector<torch::Tensor> images;
  const int sizes[3][2] = {{24, 24}, {24, 24}, {20, 36}};  // mixed sizes share a batch
  for (int i = 0; i < 3; ++i) {
    auto img = torch::randint(0, 256, {sizes[i][0], sizes[i][1], 3}, torch::kUInt8);
    cv::Mat rgb(sizes[i][0], sizes[i][1], CV_8UC3, img.data_ptr());
    cv::Mat bgr;
    cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
    files.push_back(dir / ("img" + std::to_string(i) + ".png"));
    ASSERT_TRUE(cv::imwrite(files.back().string(), bgr));
    images.push_back(img.permute({2, 0, 1}).unsqueeze(0).clone());
  }
  const auto from_files = metrics::inception_features_of_files(net, files, 2);
  ASSERT_EQ(from_files.size(0), 3);
  for (int i = 0; i < 3; ++i) {
    const auto single = metrics::inception_features(net, images[static_cast<size_t>(i)], 1);
    // Batches of 2 and 1: two fp32 evaluations of the network (tests/tolerance.h).
    const double bound = ganlite::testing::fp32_network_tolerance(*net, ganlite::testing::max_abs(single));
    ganlite::testing::expect_close(from_files[i], single[0], bound, "image " + std::to_string(i));
  }
  try {
    metrics::inception_features_of_files(net, {dir / "nope.png"}, 2);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nope.png"), std::string::npos) << e.what();
  }
}
