#include "ganlite/metrics/image_quality.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "ganlite/util/error.h"
#include "ganlite/util/text.h"

namespace ganlite::metrics {

namespace F = torch::nn::functional;

namespace {

constexpr int64_t kWindow = 11;
constexpr double kSigma = 1.5;
constexpr double kRange = 255.0;

torch::Tensor as_batch(const torch::Tensor& t, const char* what) {
  if (t.dim() == 3) return t.unsqueeze(0);
  if (t.dim() != 4) throw Error(std::string(what) + ": expected [N, C, H, W] or [C, H, W] images, got " + shape_text(t.sizes()));
  return t;
}

// Both images as float64 on the 0..255 scale, quantised when given in [-1, 1].
std::pair<torch::Tensor, torch::Tensor> pair_255(const torch::Tensor& a, const torch::Tensor& b, const char* what) {
  auto x = as_batch(a, what);
  auto y = as_batch(b, what);
  if (x.sizes() != y.sizes()) {
    throw Error(std::string(what) + ": image shapes differ: " + shape_text(a.sizes()) + " vs " + shape_text(b.sizes()));
  }
  return {quantize_to_uint8(x).to(torch::kFloat64), quantize_to_uint8(y).to(torch::kFloat64).to(x.device())};
}

// Separable Gaussian filter, 'valid' mode, each channel on its own.
torch::Tensor gaussian_filter(const torch::Tensor& x, const torch::Tensor& g) {
  const int64_t c = x.size(1);
  auto h = F::conv2d(x, g.view({1, 1, 1, kWindow}).expand({c, 1, 1, kWindow}), F::Conv2dFuncOptions().groups(c));
  return F::conv2d(h, g.view({1, 1, kWindow, 1}).expand({c, 1, kWindow, 1}), F::Conv2dFuncOptions().groups(c));
}

}  // namespace

torch::Tensor quantize_to_uint8(const torch::Tensor& images) {
  if (images.scalar_type() == torch::kUInt8) return images;
  if (!images.is_floating_point()) {
    throw Error(std::string("images must be uint8 or floating point in [-1, 1], got dtype ") +
                c10::toString(images.scalar_type()));
  }
  // NaN maps to 0 rather than to whatever the float->uint8 cast makes of it.
  return torch::nan_to_num((images.to(torch::kFloat32) + 1.0) / 2.0 * 255.0, 0.0)
      .clamp(0.0, 255.0)
      .to(torch::kUInt8);
}

torch::Tensor psnr(const torch::Tensor& a, const torch::Tensor& b) {
  auto [x, y] = pair_255(a, b, "psnr");
  const auto mse = (x - y).pow(2).flatten(1).mean(1);
  // mse == 0 gives +inf through the division, which is what "identical" should read as.
  return 10.0 * torch::log10(kRange * kRange / mse);
}

double capped_psnr(const torch::Tensor& a, const torch::Tensor& b) {
  return std::min(kPsnrCapDb, psnr(a, b).item<double>());
}

torch::Tensor ssim(const torch::Tensor& a, const torch::Tensor& b) {
  auto [x, y] = pair_255(a, b, "ssim");
  if (x.size(2) < kWindow || x.size(3) < kWindow) {
    throw Error("ssim: images of " + std::to_string(x.size(2)) + "x" + std::to_string(x.size(3)) +
                " are smaller than the 11x11 window");
  }
  auto coords = torch::arange(kWindow, torch::TensorOptions().dtype(torch::kFloat64).device(x.device())) -
                static_cast<double>(kWindow / 2);
  auto g = torch::exp(-coords.pow(2) / (2.0 * kSigma * kSigma));
  g = g / g.sum();
  const double c1 = std::pow(0.01 * kRange, 2);
  const double c2 = std::pow(0.03 * kRange, 2);
  const auto mu_x = gaussian_filter(x, g);
  const auto mu_y = gaussian_filter(y, g);
  const auto var_x = gaussian_filter(x * x, g) - mu_x * mu_x;
  const auto var_y = gaussian_filter(y * y, g) - mu_y * mu_y;
  const auto cov = gaussian_filter(x * y, g) - mu_x * mu_y;
  const auto luminance = (2.0 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1);
  const auto contrast_structure = (2.0 * cov + c2) / (var_x + var_y + c2);
  return (luminance * contrast_structure).flatten(2).mean(2).mean(1);
}

torch::Tensor l1_distance(const torch::Tensor& a, const torch::Tensor& b) {
  auto x = as_batch(a, "l1");
  auto y = as_batch(b, "l1");
  if (x.sizes() != y.sizes()) throw Error("l1: image shapes differ: " + shape_text(a.sizes()) + " vs " + shape_text(b.sizes()));
  auto to_unit = [](const torch::Tensor& t) {
    return t.scalar_type() == torch::kUInt8 ? t.to(torch::kFloat64) / 127.5 - 1.0 : t.to(torch::kFloat64);
  };
  return (to_unit(x) - to_unit(y).to(x.device())).abs().flatten(1).mean(1);
}

}  // namespace ganlite::metrics
