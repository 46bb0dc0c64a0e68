#include "ganlite/nn/init.h"

#include <torch/nn/init.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include "ganlite/util/error.h"

namespace ganlite::nn {

const std::vector<std::string>& valid_init_types() {
  static const std::vector<std::string> v{"normal", "xavier", "kaiming", "orthogonal"};
  return v;
}

namespace {
void init_weight(torch::Tensor& w, const std::string& type, double gain) {
  if (type == "normal") {
    torch::nn::init::normal_(w, 0.0, gain);
  } else if (type == "xavier") {
    torch::nn::init::xavier_normal_(w, gain);
  } else if (type == "kaiming") {
    torch::nn::init::kaiming_normal_(w, 0.0, torch::kFanIn);
  } else {
    torch::nn::init::orthogonal_(w, gain);
  }
}
}  // namespace

void init_weights(torch::nn::Module& module, const std::string& type, double gain) {
  bool known = false;
  for (const auto& t : valid_init_types()) known = known || t == type;
  if (!known) throw_bad_choice("init type", type, valid_init_types());
  torch::NoGradGuard no_grad;
  module.apply([&](torch::nn::Module& m) {
    const bool weighted = m.as<torch::nn::Conv2dImpl>() != nullptr || m.as<torch::nn::ConvTranspose2dImpl>() != nullptr ||
                          m.as<torch::nn::LinearImpl>() != nullptr;
    const bool batch_norm = m.as<torch::nn::BatchNorm2dImpl>() != nullptr;
    if (!weighted && !batch_norm) return;
    for (auto& p : m.named_parameters(false)) {
      torch::Tensor& t = p.value();
      if (p.key() == "weight") {
        if (weighted) {
          init_weight(t, type, gain);
        } else {
          torch::nn::init::normal_(t, 1.0, gain);
        }
      } else if (p.key() == "bias") {
        torch::nn::init::zeros_(t);
      }
    }
  });
}

}  // namespace ganlite::nn
