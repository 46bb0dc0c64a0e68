// Image files <-> 8-bit RGB matrices <-> tensors in [-1, 1].
#pragma once
#include <opencv2/core.hpp>
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace ganlite::data {

// The most pixels an image file may declare (8192 x 8192, 192 MiB as 8-bit RGB): checked in the
// file's header before decoding, so a small file cannot ask for gigabytes.
inline constexpr int64_t kMaxImagePixels = int64_t{8192} * 8192;

// Extensions ganlite reads: png, jpg, jpeg, bmp, webp (case-insensitive).
bool has_image_extension(const std::filesystem::path& path);

// Reads an image as 8-bit RGB (CV_8UC3, channels in R, G, B order). Gray becomes RGB, RGBA
// drops alpha, 16-bit is scaled to 8-bit. A missing, zero-byte, truncated or corrupt file, a
// folder, a non-image or one above kMaxImagePixels throws Error naming the file.
cv::Mat read_image_rgb(const std::filesystem::path& path);

// An image held in memory (an upload), checked as read_image_rgb checks files. Its header alone
// is read first: `format` is "png", "jpeg", "bmp", "webp" or "" (unrecognised), `width` and
// `height` are 0 when the header has none.
struct ImageHeader {
  std::string format;
  int64_t width = 0;
  int64_t height = 0;
};
ImageHeader peek_image_header(const std::string& bytes);
// Decodes `bytes` to 8-bit RGB with read_image_rgb's checks and conversions, the declared size
// bounded by `max_pixels` (at most kMaxImagePixels) before decoding; errors name `name`.
cv::Mat decode_image_rgb(const std::string& bytes, const std::string& name, int64_t max_pixels = kMaxImagePixels);

// Reads a single-channel 8-bit image (label maps of class ids) without any conversion; 16-bit
// is scaled to 8-bit. Same errors as read_image_rgb, plus one for a multi-channel file.
cv::Mat read_image_gray(const std::filesystem::path& path);
// Reads a single-channel 8- or 16-bit image of ids (label maps, cityscapes' 16-bit instanceIds)
// as CV_32S without scaling. Same errors as read_image_gray.
cv::Mat read_image_ids(const std::filesystem::path& path);

// Writes an 8-bit RGB image atomically; the format follows the extension.
void write_image_rgb(const std::filesystem::path& path, const cv::Mat& rgb);
// Writes an 8-bit single-channel image (CV_8UC1) atomically; the format follows the extension.
void write_image_gray(const std::filesystem::path& path, const cv::Mat& gray);

// Image files directly in `dir` (not recursive), sorted by name. Throws Error when `dir` is
// missing or not a folder.
std::vector<std::filesystem::path> list_images(const std::filesystem::path& dir);

// HxWx3 uint8 RGB -> float32 [3, H, W] in [-1, 1].
torch::Tensor image_to_tensor(const cv::Mat& rgb);
// [3, H, W] or [1, 3, H, W] float in [-1, 1] (any device) -> HxWx3 uint8 RGB, rounded and clamped.
cv::Mat tensor_to_image(const torch::Tensor& tensor);

}  // namespace ganlite::data
