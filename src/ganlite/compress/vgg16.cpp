#include "ganlite/compress/vgg16.h"

#include <torch/torch.h>

#include <map>

#include "ganlite/io/checkpoint.h"
#include "ganlite/io/pth.h"
#include "ganlite/io/safetensors.h"
#include "ganlite/util/error.h"

namespace ganlite::compress {

namespace {
torch::nn::Conv2d conv3x3(int64_t in, int64_t out) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).padding(1));
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

Vgg16FeaturesImpl::Vgg16FeaturesImpl() {
  features = register_module(
      "features", torch::nn::Sequential(conv3x3(3, 64), torch::nn::ReLU(), conv3x3(64, 64), torch::nn::ReLU(),
                                        torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2).stride(2)),
                                        conv3x3(64, 128), torch::nn::ReLU(), conv3x3(128, 128), torch::nn::ReLU()));
}

torch::Tensor Vgg16FeaturesImpl::forward(const torch::Tensor& images) {
  const auto options = images.options();
  const auto mean = torch::tensor({0.485, 0.456, 0.406}, options).view({1, 3, 1, 1});
  const auto std = torch::tensor({0.229, 0.224, 0.225}, options).view({1, 3, 1, 1});
  return features->forward(((images + 1) * 0.5 - mean) / std);
}

Vgg16Features load_vgg16_features(const std::string& path, const torch::Device& device) {
  io::NamedTensors all;
  if (ends_with(path, ".safetensors")) {
    all = io::load_safetensors(path).tensors;
  } else {
    all = io::load_pth_state_dict(path);
  }
  std::map<std::string, torch::Tensor> by_name(all.begin(), all.end());
  Vgg16Features vgg;
  io::NamedTensors wanted;
  for (const auto& [name, param] : io::state_dict(*vgg)) {
    const auto it = by_name.find(name);
    if (it == by_name.end()) {
      throw Error("--vgg-weights " + path + ": no key '" + name +
                  "' (expected torchvision vgg16 names features.0/2/5/7.weight/bias)");
    }
    if (it->second.sizes() != param.sizes()) {
      throw Error("--vgg-weights " + path + ": '" + name + "' has shape " + c10::str(it->second.sizes()) +
                  ", VGG16 expects " + c10::str(param.sizes()));
    }
    wanted.emplace_back(name, it->second.to(torch::kFloat32));
  }
  io::load_state_dict(*vgg, wanted);
  vgg->to(device);
  vgg->eval();
  for (auto& p : vgg->parameters()) p.set_requires_grad(false);
  return vgg;
}

torch::Tensor gram_matrix(const torch::Tensor& features) {
  const auto n = features.size(0), c = features.size(1);
  const auto hw = features.size(2) * features.size(3);
  const auto f = features.reshape({n, c, hw});
  return torch::bmm(f, f.transpose(1, 2)) / static_cast<double>(c * hw);
}

}  // namespace ganlite::compress
