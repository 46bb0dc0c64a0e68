// Sample grids: one row per image, columns input | output | target (target omitted when absent).
#pragma once
#include <opencv2/core.hpp>
#include <torch/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace ganlite::train {

// columns: tensors [N, 3, H, W] in [-1, 1] of equal shape (undefined ones are skipped).
cv::Mat make_sample_grid(const std::vector<torch::Tensor>& columns);
// A grid as written: its size and PNG bytes (which TensorBoard's image summaries take as they are).
struct SampleGrid {
  int rows = 0, cols = 0;
  std::string png;
};
// Writes the grid as a PNG file (atomically; `path` names a .png) and returns what it wrote.
SampleGrid write_sample_grid(const std::filesystem::path& path, const std::vector<torch::Tensor>& columns);
// The PNG bytes of an RGB image (a grid, for TensorBoard's image summaries).
std::string encode_png_rgb(const cv::Mat& rgb);

}  // namespace ganlite::train
