#include "ganlite/compress/vgg16.h"

#include <torch/torch.h>

#include <algorithm>
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

// torchvision's vgg16 cfg "D": 64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512 (the last
// pool is beyond relu4_3 and left out).
Vgg16FeaturesImpl::Vgg16FeaturesImpl() {
  torch::nn::Sequential seq;
  int64_t in = 3;
  const std::vector<std::vector<int64_t>> stages{{64, 64}, {128, 128}, {256, 256, 256}, {512, 512, 512}};
  for (size_t s = 0; s < stages.size(); ++s) {
    if (s > 0) seq->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2).stride(2)));
    for (const int64_t out : stages[s]) {
      seq->push_back(conv3x3(in, out));
      seq->push_back(torch::nn::ReLU());
      in = out;
    }
  }
  features = register_module("features", seq);
}

std::vector<torch::Tensor> Vgg16FeaturesImpl::forward(const torch::Tensor& images) {
  // The ReLUs ending relu1_2, relu2_2, relu3_3, relu4_3 (torchvision indices 3, 8, 15, 22).
  const std::vector<size_t> taps{3, 8, 15, 22};
  std::vector<torch::Tensor> out;
  torch::Tensor x = (images + 1) * 0.5;
  size_t index = 0;
  for (auto& layer : *features) {
    x = layer.forward(x);
    if (std::find(taps.begin(), taps.end(), index++) != taps.end()) out.push_back(x);
  }
  return out;
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
                  "' (expected torchvision vgg16 names features.{0,2,5,7,10,12,14,17,19,21}.weight/bias)");
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
