#include "ganlite/compress/wavelet.h"

#include <torch/torch.h>

#include "ganlite/util/error.h"

namespace ganlite::compress {

namespace F = torch::nn::functional;

namespace {

// Four 2x2 orthonormal Haar filters, in band order LL, LH, HL, HH, repeated per channel.
torch::Tensor haar_filters(int64_t channels, const torch::TensorOptions& options) {
  const float h = 0.5F;
  auto f = torch::tensor({h, h, h, h,      // LL: average
                          h, h, -h, -h,    // LH: vertical change (top minus bottom)
                          h, -h, h, -h,    // HL: horizontal change (left minus right)
                          h, -h, -h, h},   // HH: diagonal
                         torch::TensorOptions().dtype(torch::kFloat32))
               .view({4, 1, 2, 2});
  return f.repeat({channels, 1, 1, 1}).to(options);
}

}  // namespace

torch::Tensor WaveletLevel::details() const { return torch::stack({lh, hl, hh}, 2); }

WaveletPyramid haar_dwt(const torch::Tensor& images, int levels) {
  require(images.dim() == 4, "haar_dwt expects [N, C, H, W], got " + std::to_string(images.dim()) + " dims");
  require(levels >= 1, "wavelet levels must be >= 1, got " + std::to_string(levels));
  const int64_t n = images.size(0);
  const int64_t c = images.size(1);
  const auto filters = haar_filters(c, images.options());
  WaveletPyramid pyramid;
  auto x = images;
  for (int level = 0; level < levels; ++level) {
    const int64_t h = x.size(2);
    const int64_t w = x.size(3);
    require(h >= 1 && w >= 1, "image too small for " + std::to_string(levels) + " wavelet levels");
    pyramid.input_sizes.push_back({h, w});
    if (h % 2 != 0 || w % 2 != 0) x = F::pad(x, F::PadFuncOptions({0, w % 2, 0, h % 2}));
    auto bands = F::conv2d(x, filters, F::Conv2dFuncOptions().stride(2).groups(c));
    bands = bands.view({n, c, 4, bands.size(2), bands.size(3)});
    pyramid.levels.push_back({bands.select(2, 1), bands.select(2, 2), bands.select(2, 3)});
    x = bands.select(2, 0);
  }
  pyramid.ll = x;
  return pyramid;
}

torch::Tensor haar_idwt(const WaveletPyramid& pyramid) {
  auto x = pyramid.ll;
  const int64_t n = x.size(0);
  const int64_t c = x.size(1);
  const auto filters = haar_filters(c, x.options());
  for (size_t i = pyramid.levels.size(); i-- > 0;) {
    const auto& level = pyramid.levels[i];
    auto bands = torch::stack({x, level.lh, level.hl, level.hh}, 2).view({n, 4 * c, x.size(2), x.size(3)});
    // The filters are orthonormal, so the transposed convolution is the exact inverse.
    x = F::conv_transpose2d(bands, filters, F::ConvTranspose2dFuncOptions().stride(2).groups(c));
    const auto& size = pyramid.input_sizes[i];
    x = x.narrow(2, 0, size[0]).narrow(3, 0, size[1]);
  }
  return x;
}

torch::Tensor wavelet_detail_loss(const torch::Tensor& student, const torch::Tensor& teacher, int levels,
                                  const std::string& distance) {
  if (distance != "l1" && distance != "mse") throw_bad_choice("wavelet distance", distance, {"l1", "mse"});
  const auto s = haar_dwt(student, levels);
  const auto t = haar_dwt(teacher, levels);
  auto loss = torch::zeros({}, student.options());
  for (size_t i = 0; i < s.levels.size(); ++i) {
    // One mean over N * C * 3 * h * w elements, as the release's l1_loss / mse_loss on yh[i].
    const auto sd = s.levels[i].details();
    const auto td = t.levels[i].details();
    loss = loss + (distance == "l1" ? F::l1_loss(sd, td) : F::mse_loss(sd, td));
  }
  return loss;
}

}  // namespace ganlite::compress
