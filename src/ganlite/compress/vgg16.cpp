#include "ganlite/compress/vgg16.h"

#include <torch/torch.h>

namespace ganlite::compress {

train::VggSpec vgg16_relu_x_3() {
  train::VggSpec spec{"vgg16", {64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512}, {3, 8, 15, 22}};
  spec.input_scale = 0.5;
  spec.input_shift = 0.5;
  return spec;
}

Vgg16Features load_vgg16_features(const std::string& path, const torch::Device& device) {
  return train::load_vgg_features(path, vgg16_relu_x_3(), device);
}

torch::Tensor gram_matrix(const torch::Tensor& features) {
  const auto n = features.size(0), c = features.size(1);
  const auto hw = features.size(2) * features.size(3);
  const auto f = features.reshape({n, c, hw});
  return torch::bmm(f, f.transpose(1, 2)) / static_cast<double>(c * hw);
}

}  // namespace ganlite::compress
