// The orthonormal Haar discrete wavelet transform as a fixed strided depthwise convolution:
// differentiable, batched, on any device. WKD distils only its detail bands.
#pragma once
#include <torch/types.h>

#include <string>
#include <vector>

namespace ganlite::compress {

struct WaveletLevel {
  torch::Tensor lh;  // [N, C, H/2, W/2] detail bands of this level
  torch::Tensor hl;
  torch::Tensor hh;
};

struct WaveletPyramid {
  torch::Tensor ll;                  // the coarsest approximation band
  std::vector<WaveletLevel> levels;  // finest first
  std::vector<std::vector<int64_t>> input_sizes;  // [H, W] entering each level (for the inverse)
};

// J-level Haar DWT. Odd heights/widths are zero-padded to even at each level (and cropped
// back by the inverse), as pytorch_wavelets' mode='zero' does.
WaveletPyramid haar_dwt(const torch::Tensor& images, int levels);
// Inverse of haar_dwt: perfect reconstruction up to float rounding.
torch::Tensor haar_idwt(const WaveletPyramid& pyramid);

// WKD's loss: the mean distance ("l1" or "mse") between student and teacher detail bands
// (LH, HL, HH), summed over bands and levels; the LL band is ignored.
torch::Tensor wavelet_detail_loss(const torch::Tensor& student, const torch::Tensor& teacher, int levels,
                                  const std::string& distance);

}  // namespace ganlite::compress
