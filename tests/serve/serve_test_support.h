// Helpers of the serve tests (test_serve.cpp, test_serve_cli.cpp): tiny generator files, images
// as uploads, the `ganlite translate` library path as reference, a server on an ephemeral port.
#pragma once
#include <torch/torch.h>

#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <thread>
#include <vector>

#include "ganlite/data/image_io.h"
#include "ganlite/io/checkpoint.h"
#include "ganlite/nn/generator.h"
#include "ganlite/nn/inference.h"
#include "ganlite/nn/translate.h"
#include "ganlite/serve/http_server.h"
#include "ganlite/serve/service.h"
#include "ganlite/util/atomic_file.h"
#include "ganlite/util/error.h"
#include "test_support.h"

namespace ganlite::serve_testing {

// A tiny generator file whose weights are scaled up from the N(0, 0.02) init, so its output
// varies with the input (a fresh init gives a nearly uniform grey).
inline std::filesystem::path write_tiny_generator(const std::filesystem::path& path, const std::string& arch, int ngf,
                                                  const std::string& norm, int n_blocks, uint64_t seed) {
  torch::manual_seed(seed);
  auto generator = nn::make_generator(testing::arch_config(arch, ngf, norm, n_blocks));
  {
    torch::NoGradGuard no_grad;
    for (auto& p : generator->parameters()) {
      if (p.dim() == 4) p.mul_(10.0);
    }
  }
  io::save_generator(path, *generator);
  return path;
}

// A deterministic RGB test pattern (gradients and a few blocks), h x w.
inline cv::Mat pattern_rgb(int height, int width) {
  cv::Mat rgb(height, width, CV_8UC3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const bool block = ((x / 8) + (y / 8)) % 3 == 0;
      rgb.at<cv::Vec3b>(y, x) = cv::Vec3b(static_cast<uchar>(block ? 230 : x * 255 / width),
                                          static_cast<uchar>(y * 255 / height), static_cast<uchar>(block ? 40 : 128));
    }
  }
  return rgb;
}

// `rgb` encoded as ".png" / ".jpg" bytes.
inline std::string encode_rgb(const cv::Mat& rgb, const std::string& ext) {
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  std::vector<unsigned char> bytes;
  cv::imencode(ext, bgr, bytes);
  return std::string(bytes.begin(), bytes.end());
}

// What `ganlite translate --model MODEL` writes for an input file holding `bytes`: the image read
// by data::read_image_rgb, the fast path, translate_padded, tensor_to_image.
inline cv::Mat translate_like_cli(const std::filesystem::path& model, const std::string& bytes, const std::filesystem::path& dir,
                                  const std::string& ext) {
  const auto input = dir / ("input" + ext);
  write_file_atomic(input, bytes);
  auto generator = io::load_generator(model);
  const nn::InferenceRunner runner(*generator, nn::InferenceOptions{nn::Precision::fp32, true});
  const auto image = data::image_to_tensor(data::read_image_rgb(input)).unsqueeze(0);
  const auto out = nn::translate_padded([&](const torch::Tensor& x) { return runner.forward(x); }, image,
                                        nn::size_multiple(generator->config()));
  return data::tensor_to_image(out[0]);
}

// A PNG answer decoded to RGB.
inline cv::Mat decode_png_rgb(const std::string& bytes) { return data::decode_image_rgb(bytes, "answer"); }

inline torch::Tensor as_tensor(const cv::Mat& rgb) {
  return torch::from_blob(rgb.data, {rgb.rows, rgb.cols, 3}, torch::kUInt8).clone();
}

// A TranslationService behind an HttpServer on 127.0.0.1 and an ephemeral port.
class RunningServer {
 public:
  explicit RunningServer(serve::ServiceOptions options)
      : service_(std::move(options)), http_(service_, serve::HttpOptions{"127.0.0.1", 0}) {
    port_ = http_.bind();
    thread_ = std::thread([this] { http_.serve(); });
  }
  ~RunningServer() {
    http_.stop();
    thread_.join();
  }
  int port() const { return port_; }
  serve::TranslationService& service() { return service_; }
  serve::HttpReply get(const std::string& target) { return serve::http_request("127.0.0.1", port_, "GET", target); }
  serve::HttpReply post(const std::string& target, const std::string& body) {
    return serve::http_request("127.0.0.1", port_, "POST", target, body);
  }

 private:
  serve::TranslationService service_;
  serve::HttpServer http_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace ganlite::serve_testing
