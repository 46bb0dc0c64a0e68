// Runs an exported .onnx generator with OpenCV's DNN module (no ONNX runtime needed): an NCHW
// float tensor in, an NCHW float tensor out. `ganlite translate --model X.onnx` uses it.
#pragma once
#include <torch/types.h>

#include <filesystem>
#include <memory>
#include <string>

namespace ganlite::io {

// True when `path` names an ONNX model (extension .onnx, any case).
bool is_onnx_path(const std::filesystem::path& path);

class OnnxRunner {
 public:
  // Loads the model; Error naming the file when it is missing or OpenCV cannot import it.
  explicit OnnxRunner(const std::filesystem::path& path);
  ~OnnxRunner();
  OnnxRunner(const OnnxRunner&) = delete;
  OnnxRunner& operator=(const OnnxRunner&) = delete;

  // Runs the network on a 4-D NCHW tensor (any device and floating dtype; computed on the CPU in
  // float32). The result is float32 on the input's device. Error for a non-4-D input.
  torch::Tensor run(const torch::Tensor& input);

  const std::filesystem::path& path() const { return path_; }

 private:
  struct Impl;
  std::filesystem::path path_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ganlite::io
