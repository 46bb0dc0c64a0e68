#include "ganlite/train/vgg_loss.h"

#include <torch/torch.h>

#include <map>

#include "ganlite/io/checkpoint.h"
#include "ganlite/io/pth.h"
#include "ganlite/io/safetensors.h"
#include "ganlite/util/error.h"

namespace ganlite::train {

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// SPADE's VGGLoss weights of relu1_1 .. relu5_1.
const std::vector<double>& spade_vgg_weights() {
  static const std::vector<double> w{1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0};
  return w;
}
}  // namespace

VggSpec vgg19_relu_x_1() {
  // cfg "E" through the first conv of the fifth stage; relu1_1 = 1, relu2_1 = 6, relu3_1 = 11,
  // relu4_1 = 20, relu5_1 = 29 (SPADE's VGG19 slices end at 2, 7, 12, 21, 30).
  return {"vgg19", {64, 64, 0, 128, 128, 0, 256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512}, {1, 6, 11, 20, 29}};
}

VggFeaturesImpl::VggFeaturesImpl(const VggSpec& spec)
    : taps_(spec.taps), input_scale_(spec.input_scale), input_shift_(spec.input_shift) {
  torch::nn::Sequential seq;
  int64_t in = 3;
  for (const int64_t width : spec.cfg) {
    if (width == 0) {
      seq->push_back(torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2).stride(2)));
      continue;
    }
    seq->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, width, 3).padding(1)));
    seq->push_back(torch::nn::ReLU());
    in = width;
  }
  require(!taps_.empty() && taps_.back() < seq->size(), spec.name + ": a tap lies beyond the built layers");
  features = register_module("features", seq);
}

std::vector<torch::Tensor> VggFeaturesImpl::forward(const torch::Tensor& images) {
  std::vector<torch::Tensor> out;
  torch::Tensor x = (input_scale_ == 1.0 && input_shift_ == 0.0) ? images : images * input_scale_ + input_shift_;
  size_t tap = 0, index = 0;
  for (auto& layer : *features) {
    if (tap == taps_.size()) break;  // nothing deeper is read
    x = layer.forward(x);
    if (index++ == taps_[tap]) {
      out.push_back(x);
      ++tap;
    }
  }
  return out;
}

VggFeatures load_vgg_features(const std::string& path, const VggSpec& spec, const torch::Device& device) {
  const io::NamedTensors all =
      ends_with(path, ".safetensors") ? io::load_safetensors(path).tensors : io::load_pth_state_dict(path);
  std::map<std::string, torch::Tensor> by_name(all.begin(), all.end());
  VggFeatures vgg(spec);
  io::NamedTensors wanted;
  for (const auto& [name, param] : io::state_dict(*vgg)) {
    const auto it = by_name.find(name);
    if (it == by_name.end()) {
      throw Error("--vgg-weights " + path + ": no key '" + name + "' (expected torchvision " + spec.name +
                  " names features.<i>.weight / .bias)");
    }
    if (it->second.sizes() != param.sizes()) {
      throw Error("--vgg-weights " + path + ": '" + name + "' has shape " + c10::str(it->second.sizes()) + ", " +
                  spec.name + " expects " + c10::str(param.sizes()));
    }
    wanted.emplace_back(name, it->second.to(torch::kFloat32));
  }
  io::load_state_dict(*vgg, wanted);
  vgg->to(device);
  vgg->eval();
  for (auto& p : vgg->parameters()) p.set_requires_grad(false);
  return vgg;
}

SpadeVggLoss::SpadeVggLoss(const std::string& weights_path, const torch::Device& device)
    : vgg_(load_vgg_features(weights_path, vgg19_relu_x_1(), device)) {}

torch::Tensor SpadeVggLoss::operator()(const torch::Tensor& fake, const torch::Tensor& real) {
  const auto fake_features = vgg_->forward(fake);
  std::vector<torch::Tensor> real_features;
  {
    torch::NoGradGuard no_grad;
    real_features = vgg_->forward(real);
  }
  const auto& weights = spade_vgg_weights();
  torch::Tensor loss = torch::zeros({}, fake.options());
  for (size_t i = 0; i < weights.size(); ++i) {
    loss = loss + torch::l1_loss(fake_features[i], real_features[i]) * weights[i];
  }
  return loss;
}

}  // namespace ganlite::train
