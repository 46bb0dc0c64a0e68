#include "ganlite/io/onnx_runner.h"

#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <opencv2/dnn.hpp>
#include <vector>

#include "ganlite/util/atomic_file.h"
#include "ganlite/util/error.h"

namespace ganlite::io {

bool is_onnx_path(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".onnx";
}

// OpenCV 4.6 keeps some shape-dependent state of a Net from the first input size it ran: with
// --dynamic-size exports holding zero or replication padding (reflect-only graphs were fine), a
// second size gave wrong results while a fresh Net at that size was exact (tests/interop). The runner therefore imports a fresh Net from the model's bytes whenever the
// input shape changes (cheap next to a forward pass; fixed-size use imports once).
struct OnnxRunner::Impl {
  std::vector<uchar> bytes;
  cv::dnn::Net net;
  std::vector<int> shape;  // the input shape `net` last ran

  void load(const std::string& source) {
    try {
      net = cv::dnn::readNetFromONNX(bytes);
    } catch (const cv::Exception& e) {
      throw Error(source + ": OpenCV DNN cannot import this ONNX model: " + e.what());
    }
    if (net.empty()) throw Error(source + ": OpenCV DNN imported an empty network");
    net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
  }
};

OnnxRunner::OnnxRunner(const std::filesystem::path& path) : path_(path), impl_(std::make_unique<Impl>()) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw Error(path.string() + ": no such ONNX file");
  const std::string text = read_file(path);
  impl_->bytes.assign(text.begin(), text.end());
  impl_->load(path.string());
}

OnnxRunner::~OnnxRunner() = default;

torch::Tensor OnnxRunner::run(const torch::Tensor& input) {
  if (input.dim() != 4) {
    throw Error(path_.string() + ": the ONNX generator needs an NCHW input, got shape " + c10::str(input.sizes()));
  }
  const torch::Tensor x = input.detach().to(torch::kCPU, torch::kFloat).contiguous();
  const int sizes[4] = {static_cast<int>(x.size(0)), static_cast<int>(x.size(1)), static_cast<int>(x.size(2)),
                        static_cast<int>(x.size(3))};
  // The blob shares the tensor's memory; setInput copies it.
  const cv::Mat blob(4, sizes, CV_32F, const_cast<float*>(x.data_ptr<float>()));
  const std::vector<int> input_shape(sizes, sizes + 4);
  if (!impl_->shape.empty() && impl_->shape != input_shape) impl_->load(path_.string());
  impl_->shape = input_shape;
  cv::Mat out;
  try {
    impl_->net.setInput(blob);
    out = impl_->net.forward();
  } catch (const cv::Exception& e) {
    throw Error(path_.string() + ": OpenCV DNN failed on an input of shape " + c10::str(input.sizes()) + ": " +
                e.what());
  }
  if (out.type() != CV_32F || !out.isContinuous()) out = out.clone();
  std::vector<int64_t> shape(out.size.p, out.size.p + out.dims);
  torch::Tensor y = torch::from_blob(out.ptr<float>(), shape, torch::kFloat).clone();
  return y.to(input.device());
}

}  // namespace ganlite::io
