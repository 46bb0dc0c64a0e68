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
  // The three bands stacked as [N, C, 3, H/2, W/2] (LH, HL, HH): the layout and signs of one
  // entry of the yh list of pytorch_wavelets' DWTForward(wave='haar').
  torch::Tensor details() const;
};

struct WaveletPyramid {
  torch::Tensor ll;                  // the coarsest approximation band
  std::vector<WaveletLevel> levels;  // finest first
  std::vector<std::vector<int64_t>> input_sizes;  // [H, W] entering each level (for the inverse)
};

// J-level Haar DWT. An odd height / width gets one zero row / column appended (bottom / right)
// before that level, even sizes none (and the inverse crops it back): pytorch_wavelets'
// mode='zero' for a 2-tap filter, so each level has ceil(H/2) x ceil(W/2) coefficients.
WaveletPyramid haar_dwt(const torch::Tensor& images, int levels);
// Inverse of haar_dwt: perfect reconstruction up to float rounding.
torch::Tensor haar_idwt(const WaveletPyramid& pyramid);

// WKD's loss as the WKD release computes it (docs/fidelity.md): per level ONE mean distance
// ("l1" or "mse") over the stacked detail bands [N, C, 3, h, w] of student and teacher, summed
// over levels; the LL band is ignored. (A sum of three per-band means would be 3x this.) The
// method's weight (0.4) is applied by the caller.
torch::Tensor wavelet_detail_loss(const torch::Tensor& student, const torch::Tensor& teacher, int levels,
                                  const std::string& distance);

}  // namespace ganlite::compress
