// Base64 (RFC 4648, with padding) and data URIs, for self-contained HTML reports.
#pragma once
#include <opencv2/core.hpp>

#include <string>

namespace ganlite::report {

std::string base64_encode(const std::string& bytes);

// "data:image/png;base64,..." of an 8-bit RGB (or gray) image encoded as PNG. Throws Error when
// the image is empty or cannot be encoded.
std::string png_data_uri(const cv::Mat& rgb);

}  // namespace ganlite::report
