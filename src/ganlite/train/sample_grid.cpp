#include "ganlite/train/sample_grid.h"

#include <torch/torch.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "ganlite/data/image_io.h"
#include "ganlite/util/atomic_file.h"
#include "ganlite/util/error.h"

namespace ganlite::train {

cv::Mat make_sample_grid(const std::vector<torch::Tensor>& columns) {
  std::vector<torch::Tensor> defined;
  for (const auto& c : columns) {
    if (c.defined()) defined.push_back(c.detach().to(torch::kCPU, torch::kFloat32));
  }
  require(!defined.empty(), "make_sample_grid: no images");
  for (const auto& c : defined) {
    require(c.dim() == 4 && c.sizes() == defined.front().sizes(),
            "make_sample_grid: every column must be [N, 3, H, W] of the same shape");
  }
  std::vector<cv::Mat> rows;
  for (int64_t i = 0; i < defined.front().size(0); ++i) {
    std::vector<cv::Mat> cells;
    for (const auto& c : defined) cells.push_back(data::tensor_to_image(c[i]));
    cv::Mat row;
    cv::hconcat(cells, row);
    rows.push_back(row);
  }
  cv::Mat grid;
  cv::vconcat(rows, grid);
  return grid;
}

SampleGrid write_sample_grid(const std::filesystem::path& path, const std::vector<torch::Tensor>& columns) {
  const cv::Mat grid = make_sample_grid(columns);
  SampleGrid written{grid.rows, grid.cols, encode_png_rgb(grid)};
  write_file_atomic(path, written.png);
  return written;
}

std::string encode_png_rgb(const cv::Mat& rgb) {
  require(rgb.type() == CV_8UC3, "encode_png_rgb: expects an 8-bit RGB image");
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);  // OpenCV encodes BGR
  std::vector<uchar> png;
  // Compression 3, as data::write_image_rgb writes PNGs.
  if (!cv::imencode(".png", bgr, png, {cv::IMWRITE_PNG_COMPRESSION, 3})) throw Error("cannot encode an image as PNG");
  return std::string(png.begin(), png.end());
}

}  // namespace ganlite::train
