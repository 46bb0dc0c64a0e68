#include "ganlite/data/image_io.h"

#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "ganlite/util/atomic_file.h"
#include "ganlite/util/error.h"

namespace ganlite::data {

namespace fs = std::filesystem;

namespace {

std::string lower_extension(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

enum class Format { kPng, kJpeg, kBmp, kWebp, kUnknown };

Format sniff_format(const std::string& bytes) {
  static const unsigned char kPngSig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (bytes.size() >= 8 && std::memcmp(bytes.data(), kPngSig, 8) == 0) return Format::kPng;
  if (bytes.size() >= 3 && static_cast<unsigned char>(bytes[0]) == 0xFF && static_cast<unsigned char>(bytes[1]) == 0xD8 &&
      static_cast<unsigned char>(bytes[2]) == 0xFF) {
    return Format::kJpeg;
  }
  if (bytes.size() >= 2 && bytes[0] == 'B' && bytes[1] == 'M') return Format::kBmp;
  if (bytes.size() >= 12 && bytes.compare(0, 4, "RIFF") == 0 && bytes.compare(8, 4, "WEBP") == 0) return Format::kWebp;
  return Format::kUnknown;
}

uint32_t read_be32(const std::string& bytes, size_t pos) {
  return (static_cast<uint32_t>(static_cast<unsigned char>(bytes[pos])) << 24) |
         (static_cast<uint32_t>(static_cast<unsigned char>(bytes[pos + 1])) << 16) |
         (static_cast<uint32_t>(static_cast<unsigned char>(bytes[pos + 2])) << 8) |
         static_cast<uint32_t>(static_cast<unsigned char>(bytes[pos + 3]));
}

// Walks the PNG chunk list; a file cut short never reaches IEND. libpng alone would hand back
// the rows it managed to decode, so truncation has to be caught here.
bool png_is_complete(const std::string& bytes) {
  size_t pos = 8;
  while (pos + 12 <= bytes.size()) {
    const uint64_t length = read_be32(bytes, pos);
    const std::string type = bytes.substr(pos + 4, 4);
    const uint64_t next = pos + 12 + length;
    if (next > bytes.size()) return false;
    if (type == "IEND") return true;
    pos = static_cast<size_t>(next);
  }
  return false;
}

// Skips the marker segments up to the first start-of-scan, then requires an end-of-image marker
// after it. Inside entropy-coded data 0xFF is always followed by 0x00 or a restart marker, so an
// FF D9 there is the real end; libjpeg would otherwise pad a truncated image with grey.
bool jpeg_is_complete(const std::string& bytes) {
  size_t pos = 2;
  const auto at = [&](size_t i) { return static_cast<unsigned char>(bytes[i]); };
  while (pos + 4 <= bytes.size()) {
    if (at(pos) != 0xFF) return false;
    const unsigned char marker = at(pos + 1);
    if (marker == 0xFF) {  // fill byte
      ++pos;
      continue;
    }
    if (marker == 0xD9) return false;  // EOI before any scan
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {  // markers without a length
      pos += 2;
      continue;
    }
    const size_t length = (static_cast<size_t>(at(pos + 2)) << 8) | at(pos + 3);
    if (length < 2) return false;
    const size_t segment_end = pos + 2 + length;
    if (segment_end > bytes.size()) return false;
    if (marker == 0xDA) {
      for (size_t i = segment_end; i + 1 < bytes.size(); ++i) {
        if (at(i) == 0xFF && at(i + 1) == 0xD9) return true;
      }
      return false;
    }
    pos = segment_end;
  }
  return false;
}

uint32_t read_le(const std::string& bytes, size_t pos, int n) {
  uint32_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(bytes[pos + static_cast<size_t>(i)]);
  return v;
}

struct DeclaredSize {
  int64_t width = 0;
  int64_t height = 0;
};

// The first frame header's size (SOF0..SOF15 but DHT, JPG and DAC), found by the marker walk
// of jpeg_is_complete.
DeclaredSize jpeg_size(const std::string& bytes) {
  const auto at = [&](size_t i) { return static_cast<unsigned char>(bytes[i]); };
  size_t pos = 2;
  while (pos + 4 <= bytes.size() && at(pos) == 0xFF) {
    const unsigned char marker = at(pos + 1);
    if (marker == 0xFF) {
      ++pos;
      continue;
    }
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
      pos += 2;
      continue;
    }
    const size_t length = (static_cast<size_t>(at(pos + 2)) << 8) | at(pos + 3);
    const bool frame = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (frame && length >= 7 && pos + 9 <= bytes.size()) {
      return {(int64_t{at(pos + 7)} << 8) | at(pos + 8), (int64_t{at(pos + 5)} << 8) | at(pos + 6)};
    }
    if (marker == 0xDA || length < 2) break;  // scan data before any frame header
    pos += 2 + length;
  }
  return {};
}

// Width and height from the header, without decoding; {0, 0} when the header is unreadable.
DeclaredSize header_size(const std::string& bytes, Format format) {
  switch (format) {
    case Format::kPng:  // IHDR is the first chunk
      if (bytes.size() >= 24 && bytes.compare(12, 4, "IHDR") == 0) return {read_be32(bytes, 16), read_be32(bytes, 20)};
      return {};
    case Format::kJpeg:
      return jpeg_size(bytes);
    case Format::kBmp: {
      if (bytes.size() < 26) return {};
      if (read_le(bytes, 14, 4) == 12) return {read_le(bytes, 18, 2), read_le(bytes, 20, 2)};  // OS/2 core header
      const auto height = static_cast<int32_t>(read_le(bytes, 22, 4));  // negative: rows top-down
      return {static_cast<int32_t>(read_le(bytes, 18, 4)), height < 0 ? -int64_t{height} : height};
    }
    case Format::kWebp:
      if (bytes.size() >= 30 && bytes.compare(12, 4, "VP8X") == 0) {
        return {int64_t{read_le(bytes, 24, 3)} + 1, int64_t{read_le(bytes, 27, 3)} + 1};
      }
      if (bytes.size() >= 30 && bytes.compare(12, 4, "VP8 ") == 0) {
        return {read_le(bytes, 26, 2) & 0x3FFF, read_le(bytes, 28, 2) & 0x3FFF};
      }
      if (bytes.size() >= 25 && bytes.compare(12, 4, "VP8L") == 0) {
        const uint32_t bits = read_le(bytes, 21, 4);
        return {int64_t{bits & 0x3FFF} + 1, int64_t{(bits >> 14) & 0x3FFF} + 1};
      }
      return {};
    case Format::kUnknown:
      return {};
  }
  return {};
}

// A few bytes of header can ask the decoder for gigabytes (a 60000 x 60000 PNG of zeros
// compresses to a few MB): the declared size is checked before decoding.
void check_declared_size(const fs::path& path, const std::string& bytes, Format format) {
  const DeclaredSize size = header_size(bytes, format);
  if (size.width <= 0 || size.height <= 0) {
    throw Error("image " + path.string() + ": corrupt header (no valid width and height)");
  }
  if (size.width > kMaxImagePixels || size.height > kMaxImagePixels || size.width * size.height > kMaxImagePixels) {
    throw Error("image " + path.string() + ": " + std::to_string(size.width) + "x" + std::to_string(size.height) +
                " pixels, more than the limit of " + std::to_string(kMaxImagePixels) + " (8192x8192)");
  }
}

// The checks every reader makes on an image's bytes before decoding (files and uploads alike):
// a known format, a complete PNG / JPEG, a declared size within bounds. Returns the format.
Format check_image_bytes(const fs::path& label, const std::string& bytes) {
  const Format format = sniff_format(bytes);
  switch (format) {
    case Format::kPng:
      if (!png_is_complete(bytes)) throw Error("image " + label.string() + ": truncated or corrupt PNG (no IEND chunk)");
      break;
    case Format::kJpeg:
      if (!jpeg_is_complete(bytes)) {
        throw Error("image " + label.string() + ": truncated or corrupt JPEG (no end-of-image marker)");
      }
      break;
    case Format::kBmp:
    case Format::kWebp:
      break;
    case Format::kUnknown:
      throw Error("image " + label.string() + ": not a PNG, JPEG, BMP or WebP file (unrecognised content)");
  }
  check_declared_size(label, bytes, format);
  return format;
}

// Reads the file and checks it is a complete image of a known format; returns its bytes.
std::string read_checked_bytes(const fs::path& path) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) throw Error("image " + path.string() + ": no such file");
  if (fs::is_directory(status)) throw Error("image " + path.string() + ": is a folder, expected an image file");
  if (!fs::is_regular_file(status)) throw Error("image " + path.string() + ": not a regular file");
  std::string bytes = read_file(path);
  if (bytes.empty()) throw Error("image " + path.string() + ": file is empty (0 bytes)");
  check_image_bytes(path, bytes);
  return bytes;
}

cv::Mat decode(const fs::path& path, const std::string& bytes) {
  cv::Mat decoded;
  try {
    const cv::Mat buffer(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data()));
    decoded = cv::imdecode(buffer, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    throw Error("image " + path.string() + ": cannot decode: " + e.what());
  }
  if (decoded.empty()) throw Error("image " + path.string() + ": corrupt or unsupported image data");
  return decoded;
}

cv::Mat to_8bit(const fs::path& path, const cv::Mat& image) {
  switch (image.depth()) {
    case CV_8U:
      return image;
    case CV_16U: {
      cv::Mat out;
      image.convertTo(out, CV_8U, 1.0 / 257.0);  // 65535 -> 255 exactly
      return out;
    }
    default:
      throw Error("image " + path.string() + ": unsupported sample depth (expected 8 or 16 bits)");
  }
}

std::vector<int> encode_params(const std::string& ext) {
  if (ext == ".jpg" || ext == ".jpeg") return {cv::IMWRITE_JPEG_QUALITY, 95};
  if (ext == ".png") return {cv::IMWRITE_PNG_COMPRESSION, 3};
  if (ext == ".webp") return {cv::IMWRITE_WEBP_QUALITY, 101};  // above 100 means lossless
  return {};
}

void write_encoded(const fs::path& path, const cv::Mat& image) {
  const std::string ext = lower_extension(path);
  if (!has_image_extension(path)) {
    throw Error("cannot write image " + path.string() + ": unknown extension '" + ext +
                "' (valid: .png, .jpg, .jpeg, .bmp, .webp)");
  }
  std::vector<unsigned char> buffer;
  bool ok = false;
  try {
    ok = cv::imencode(ext, image, buffer, encode_params(ext));
  } catch (const cv::Exception& e) {
    throw Error("cannot encode image " + path.string() + ": " + e.what());
  }
  if (!ok) throw Error("cannot encode image " + path.string());
  write_file_atomic(path, std::string(buffer.begin(), buffer.end()));
}

}  // namespace

bool has_image_extension(const fs::path& path) {
  const std::string ext = lower_extension(path);
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp" || ext == ".webp";
}

namespace {

cv::Mat to_rgb(const fs::path& path, const cv::Mat& image) {
  cv::Mat rgb;
  switch (image.channels()) {
    case 1:
      cv::cvtColor(image, rgb, cv::COLOR_GRAY2RGB);
      break;
    case 2: {  // gray + alpha
      cv::Mat gray;
      cv::extractChannel(image, gray, 0);
      cv::cvtColor(gray, rgb, cv::COLOR_GRAY2RGB);
      break;
    }
    case 3:
      cv::cvtColor(image, rgb, cv::COLOR_BGR2RGB);
      break;
    case 4:
      cv::cvtColor(image, rgb, cv::COLOR_BGRA2RGB);
      break;
    default:
      throw Error("image " + path.string() + ": unsupported channel count " + std::to_string(image.channels()));
  }
  return rgb;
}

}  // namespace

cv::Mat read_image_rgb(const fs::path& path) {
  return to_rgb(path, to_8bit(path, decode(path, read_checked_bytes(path))));
}

ImageHeader peek_image_header(const std::string& bytes) {
  static const char* const kNames[] = {"png", "jpeg", "bmp", "webp", ""};
  const Format format = sniff_format(bytes);
  const DeclaredSize size = header_size(bytes, format);
  return {kNames[static_cast<int>(format)], size.width, size.height};
}

cv::Mat decode_image_rgb(const std::string& bytes, const std::string& name, int64_t max_pixels) {
  const fs::path label(name);
  if (bytes.empty()) throw Error("image " + name + ": empty (0 bytes)");
  const DeclaredSize size = header_size(bytes, check_image_bytes(label, bytes));
  if (size.width * size.height > max_pixels) {
    throw Error("image " + name + ": " + std::to_string(size.width) + "x" + std::to_string(size.height) +
                " pixels, more than the limit of " + std::to_string(max_pixels));
  }
  return to_rgb(label, to_8bit(label, decode(label, bytes)));
}

cv::Mat read_image_gray(const fs::path& path) {
  const cv::Mat image = to_8bit(path, decode(path, read_checked_bytes(path)));
  if (image.channels() != 1) {
    throw Error("image " + path.string() + ": expected a single-channel image, got " +
                std::to_string(image.channels()) + " channels");
  }
  return image;
}

cv::Mat read_image_ids(const fs::path& path) {
  const cv::Mat image = decode(path, read_checked_bytes(path));
  if (image.channels() != 1) {
    throw Error("image " + path.string() + ": expected a single-channel map of ids, got " +
                std::to_string(image.channels()) + " channels");
  }
  if (image.depth() != CV_8U && image.depth() != CV_16U) {
    throw Error("image " + path.string() + ": unsupported sample depth for ids (expected 8 or 16 bits)");
  }
  cv::Mat ids;
  image.convertTo(ids, CV_32S);
  return ids;
}

void write_image_rgb(const fs::path& path, const cv::Mat& rgb) {
  if (rgb.empty() || rgb.type() != CV_8UC3) {
    throw Error("cannot write image " + path.string() + ": expected a non-empty 8-bit 3-channel RGB matrix");
  }
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  write_encoded(path, bgr);
}

void write_image_gray(const fs::path& path, const cv::Mat& gray) {
  if (gray.empty() || gray.type() != CV_8UC1) {
    throw Error("cannot write image " + path.string() + ": expected a non-empty 8-bit single-channel matrix");
  }
  write_encoded(path, gray);
}

std::vector<fs::path> list_images(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) throw Error("image folder " + dir.string() + ": no such folder");
  if (!fs::is_directory(dir, ec)) throw Error("image folder " + dir.string() + ": not a folder");
  std::vector<fs::path> images;
  fs::directory_iterator it(dir, ec);
  if (ec) throw Error("image folder " + dir.string() + ": cannot list: " + ec.message());
  for (const auto& entry : it) {
    // Entries named like images are kept even when they are not regular files, so a folder
    // called "x.png" is reported by the reader instead of silently vanishing.
    if (has_image_extension(entry.path())) images.push_back(entry.path());
  }
  std::sort(images.begin(), images.end());
  return images;
}

torch::Tensor image_to_tensor(const cv::Mat& rgb) {
  if (rgb.empty() || rgb.type() != CV_8UC3) {
    throw Error("image_to_tensor: expected a non-empty 8-bit 3-channel RGB matrix");
  }
  const cv::Mat contiguous = rgb.isContinuous() ? rgb : rgb.clone();
  const auto hwc = torch::from_blob(contiguous.data, {contiguous.rows, contiguous.cols, 3}, torch::kUInt8);
  return hwc.permute({2, 0, 1}).to(torch::kFloat32).div_(127.5).sub_(1.0).contiguous();
}

cv::Mat tensor_to_image(const torch::Tensor& tensor) {
  torch::Tensor t = tensor;
  if (t.dim() == 4 && t.size(0) == 1) t = t.squeeze(0);
  if (t.dim() != 3 || t.size(0) != 3) {
    throw Error("tensor_to_image: expected a [3, H, W] or [1, 3, H, W] tensor, got " +
                std::string(c10::str(tensor.sizes())));
  }
  const auto hwc = t.detach()
                       .to(torch::kCPU, torch::kFloat32)
                       .add(1.0)
                       .mul_(127.5)
                       .round_()
                       .clamp_(0, 255)
                       .to(torch::kUInt8)
                       .permute({1, 2, 0})
                       .contiguous();
  cv::Mat rgb(static_cast<int>(hwc.size(0)), static_cast<int>(hwc.size(1)), CV_8UC3);
  std::memcpy(rgb.data, hwc.data_ptr<uint8_t>(), static_cast<size_t>(hwc.numel()));
  return rgb;
}

}  // namespace ganlite::data
