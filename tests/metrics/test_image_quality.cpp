// PSNR, SSIM, L1 with known values, and SSIM against an independent numpy implementation of
// skimage's formula when /usr/bin/python3 has numpy.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "ganlite/io/npz.h"
#include "ganlite/metrics/image_quality.h"
#include "ganlite/util/error.h"
#include "test_support.h"

using ganlite::Error;
namespace metrics = ganlite::metrics;

namespace {
torch::Tensor full_u8(int64_t value, std::vector<int64_t> shape = {1, 3, 16, 16}) {
  return torch::full(shape, value, torch::kUInt8);
}
}  // namespace

TEST(ImageQuality, IdenticalImages) {
  torch::manual_seed(0);
  const auto img = torch::rand({2, 3, 16, 20}) * 2 - 1;
  const auto p = metrics::psnr(img, img);
  ASSERT_EQ(p.sizes(), (std::vector<int64_t>{2}));
  EXPECT_TRUE(std::isinf(p[0].item<double>()) && p[0].item<double>() > 0);
  EXPECT_NEAR(metrics::ssim(img, img)[1].item<double>(), 1.0, 1e-12);
  EXPECT_EQ(metrics::l1_distance(img, img)[0].item<double>(), 0.0);
}

TEST(ImageQuality, PsnrKnownValues) {
  EXPECT_NEAR(metrics::psnr(full_u8(100), full_u8(110))[0].item<double>(), 10 * std::log10(255.0 * 255.0 / 100.0),
              1e-9);
  EXPECT_NEAR(metrics::psnr(full_u8(0), full_u8(255))[0].item<double>(), 0.0, 1e-12);
  // Half the pixels off by 20: mse 200.
  auto b = full_u8(50).clone();
  b.slice(3, 0, 8) += 20;
  EXPECT_NEAR(metrics::psnr(full_u8(50), b)[0].item<double>(), 10 * std::log10(255.0 * 255.0 / 200.0), 1e-9);
  // Batched: one value per image; [C, H, W] works as a batch of one.
  const auto two = metrics::psnr(torch::cat({full_u8(0), full_u8(100)}), torch::cat({full_u8(255), full_u8(110)}));
  EXPECT_NEAR(two[0].item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(two[1].item<double>(), 28.130803608679106, 1e-9);
  EXPECT_EQ(metrics::psnr(full_u8(1)[0], full_u8(2)[0]).size(0), 1);
}

TEST(ImageQuality, QuantisationFollowsTensor2im) {
  const auto q = metrics::quantize_to_uint8(torch::tensor({-1.0f, 1.0f, 0.0f, -2.0f, 3.0f, NAN}));
  const std::vector<int> expected{0, 255, 127, 0, 255, 0};  // 127.5 truncates to 127
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(q[static_cast<int64_t>(i)].item<int>(), expected[i]) << i;
  EXPECT_THROW(metrics::quantize_to_uint8(torch::ones({2}, torch::kInt64)), Error);
}

TEST(ImageQuality, SsimOfConstantImagesIsTheLuminanceTerm) {
  const double c1 = std::pow(0.01 * 255, 2);
  const double expected = (2 * 100.0 * 150.0 + c1) / (100.0 * 100.0 + 150.0 * 150.0 + c1);
  EXPECT_NEAR(metrics::ssim(full_u8(100), full_u8(150))[0].item<double>(), expected, 1e-12);
}

TEST(ImageQuality, SsimDropsWithNoiseAndIsSymmetric) {
  torch::manual_seed(1);
  const auto clean = torch::randint(60, 200, {1, 3, 32, 32}, torch::kUInt8);
  const auto light = (clean.to(torch::kInt32) + torch::randint(-5, 6, clean.sizes(), torch::kInt32)).to(torch::kUInt8);
  const auto heavy = (clean.to(torch::kInt32) + torch::randint(-50, 51, clean.sizes(), torch::kInt32)).to(torch::kUInt8);
  const double s_light = metrics::ssim(clean, light)[0].item<double>();
  const double s_heavy = metrics::ssim(clean, heavy)[0].item<double>();
  EXPECT_LT(s_light, 1.0);
  EXPECT_LT(s_heavy, s_light);
  EXPECT_NEAR(metrics::ssim(light, clean)[0].item<double>(), s_light, 1e-12);
}

TEST(ImageQuality, L1OnTheMinusOneToOneScale) {
  EXPECT_NEAR(metrics::l1_distance(full_u8(0), full_u8(255))[0].item<double>(), 2.0, 1e-12);
  const auto a = torch::zeros({1, 3, 4, 4});
  const auto b = torch::full({1, 3, 4, 4}, 0.25);
  EXPECT_NEAR(metrics::l1_distance(a, b)[0].item<double>(), 0.25, 1e-7);
}

TEST(ImageQuality, BadShapesAreErrors) {
  EXPECT_THROW(metrics::psnr(full_u8(0), full_u8(0, {1, 3, 16, 15})), Error);
  EXPECT_THROW(metrics::ssim(full_u8(0, {1, 3, 10, 16}), full_u8(0, {1, 3, 10, 16})), Error);
  EXPECT_THROW(metrics::l1_distance(torch::zeros({5}), torch::zeros({5})), Error);
}

TEST(ImageQuality, SsimMatchesIndependentNumpyImplementation) {
  if (!ganlite::testing::python_has_module("numpy")) GTEST_SKIP() << "/usr/bin/python3 has no numpy";
  ganlite::testing::TempDir dir;
  torch::manual_seed(2);
  const auto a = torch::randint(0, 256, {2, 3, 20, 24}, torch::kUInt8);
  const auto b = (a.to(torch::kInt32) + torch::randint(-40, 41, a.sizes(), torch::kInt32)).clamp(0, 255).to(torch::kUInt8);
  ganlite::io::save_npz(dir / "pair.npz", {{"a", a}, {"b", b}});
  // skimage's structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
  // data_range=255): Gaussian filtering (truncate 3.5 -> 11 taps), borders of 5 cropped.
  const std::string script =
      "import numpy as np, sys\n"
      "from numpy.lib.stride_tricks import sliding_window_view as win\n"
      "d = np.load(sys.argv[1] + '/pair.npz')\n"
      "r = np.arange(-5, 6); g = np.exp(-r**2 / (2 * 1.5**2)); w = np.outer(g, g); w /= w.sum()\n"
      "filt = lambda x: (win(x, (11, 11)) * w).sum(axis=(-1, -2))\n"
      "C1, C2 = (0.01 * 255)**2, (0.03 * 255)**2\n"
      "for n in range(2):\n"
      "    vals = []\n"
      "    for c in range(3):\n"
      "        x = d['a'][n, c].astype(np.float64); y = d['b'][n, c].astype(np.float64)\n"
      "        ux, uy = filt(x), filt(y)\n"
      "        vx = filt(x * x) - ux**2; vy = filt(y * y) - uy**2; vxy = filt(x * y) - ux * uy\n"
      "        s = (2 * ux * uy + C1) * (2 * vxy + C2) / ((ux**2 + uy**2 + C1) * (vx + vy + C2))\n"
      "        vals.append(s.mean())\n"
      "    print('%.15f' % np.mean(vals))\n";
  ganlite::testing::write_text_file(dir / "ssim.py", script);
  const auto r = ganlite::testing::run_command(ganlite::testing::system_python() + " " + (dir / "ssim.py").string() +
                                               " " + dir.path().string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::istringstream lines(r.output);
  double expected[2];
  lines >> expected[0] >> expected[1];
  const auto ours = metrics::ssim(a, b);
  EXPECT_NEAR(ours[0].item<double>(), expected[0], 1e-10);
  EXPECT_NEAR(ours[1].item<double>(), expected[1], 1e-10);
  EXPECT_LT(expected[0], 0.99);  // a real difference, not a trivial 1
}
