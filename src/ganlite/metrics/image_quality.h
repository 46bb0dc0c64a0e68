// Full-reference image quality: PSNR, SSIM, L1. Tensor-based, batched, on the images' device.
//
// Inputs: [N, C, H, W] or [C, H, W], either uint8 in [0, 255] or floating point in [-1, 1] (the
// generators' range). Both images of a pair must have the same shape.
// - PSNR and SSIM work on the 0..255 scale with data range 255 (the usual choice for 8-bit
//   images). Float images are quantised to uint8 first with `quantize_to_uint8`, so a generated
//   tensor scores the same as the PNG it would be saved as by the public evaluation code.
// - SSIM: Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03, population (co)variances, 'valid'
//   filtering (no padding), mean over pixels then channels: the same number as
//   skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
//   use_sample_covariance=False, data_range=255) and pytorch-msssim's ssim.
// - L1: mean absolute difference on the [-1, 1] scale (uint8 images are mapped there), like the
//   pix2pix L1 loss; no quantisation.
// Every function returns one float64 value per image ([N]) on the inputs' device.
#pragma once
#include <torch/types.h>

namespace ganlite::metrics {

// Float [-1, 1] -> uint8 as gan-compression's tensor2im does it: (x + 1) / 2 * 255, clipped to
// [0, 255], truncated. uint8 input is returned unchanged.
torch::Tensor quantize_to_uint8(const torch::Tensor& images);

// Per image; +inf where the images are identical.
torch::Tensor psnr(const torch::Tensor& a, const torch::Tensor& b);
// Figures that average PSNR over images (validation, distillation, the eval report) cap each
// image's at this, so identical images (infinite PSNR) cannot make the mean infinite.
inline constexpr double kPsnrCapDb = 100.0;
// The PSNR of one image pair (N = 1) as a number, capped at kPsnrCapDb.
double capped_psnr(const torch::Tensor& a, const torch::Tensor& b);
// Per image, in [-1, 1]; 1 for identical images. H and W must be at least 11.
torch::Tensor ssim(const torch::Tensor& a, const torch::Tensor& b);
// Per image mean |a - b| on the [-1, 1] scale.
torch::Tensor l1_distance(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace ganlite::metrics
