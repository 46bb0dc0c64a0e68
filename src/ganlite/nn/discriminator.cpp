#include "ganlite/nn/discriminator.h"

#include <algorithm>

#include <torch/nn/modules/activation.h>

#include "ganlite/nn/forward_trace.h"
#include "ganlite/nn/init.h"
#include "ganlite/nn/layers.h"
#include "ganlite/util/error.h"

namespace ganlite::nn {

namespace {
torch::nn::LeakyReLU leaky_relu() { return torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(0.2)); }

// Runs `seq` recording the output of every LeakyReLU and the final output.
std::vector<torch::Tensor> run_collecting(torch::nn::SequentialImpl& seq, torch::Tensor x) {
  std::vector<torch::Tensor> features;
  for (size_t i = 0; i < seq.size(); ++i) {
    x = run_sequential(seq, x, i, i + 1);
    if (seq.ptr(i)->as<torch::nn::LeakyReLUImpl>() != nullptr) features.push_back(x);
  }
  features.push_back(x);
  return features;
}
}  // namespace

const std::vector<std::string>& valid_discriminator_archs() {
  static const std::vector<std::string> v{"n_layers", "pixel"};
  return v;
}

void DiscriminatorConfig::validate() const {
  bool known = false;
  for (const auto& a : valid_discriminator_archs()) known = known || a == arch;
  if (!known) throw_bad_choice("discriminator", arch, valid_discriminator_archs());
  check_norm(norm);
  require(input_nc > 0, "discriminator input_nc must be positive, got " + std::to_string(input_nc));
  require(ndf > 0, "ndf must be positive, got " + std::to_string(ndf));
  require(n_layers >= 1, "discriminator n_layers must be >= 1, got " + std::to_string(n_layers));
}

int64_t DiscriminatorConfig::conv_weight_count() const {
  const int64_t in = input_nc, width = ndf;
  if (arch == "pixel") return in * width + width * 2 * width + 2 * width;
  int64_t n = in * width * 16;  // 4x4 kernels throughout
  int64_t mult = 1;
  for (int i = 1; i < n_layers; ++i) {
    const int64_t prev = mult;
    mult = std::min<int64_t>(int64_t{1} << i, 8);
    n += width * prev * width * mult * 16;
  }
  const int64_t prev = mult;
  mult = std::min<int64_t>(int64_t{1} << std::min(n_layers, 3), 8);
  return n + width * prev * width * mult * 16 + width * mult * 16;
}

NLayerDiscriminatorImpl::NLayerDiscriminatorImpl(const DiscriminatorConfig& config) {
  config.validate();
  const bool use_bias = norm_uses_bias(config.norm);
  const int64_t ndf = config.ndf;
  torch::nn::Sequential seq;
  seq->push_back(make_conv(config.input_nc, ndf, 4, 2, 1, true));
  seq->push_back(leaky_relu());
  int64_t mult = 1;
  for (int n = 1; n < config.n_layers; ++n) {
    const int64_t prev = mult;
    mult = std::min<int64_t>(int64_t{1} << n, 8);
    seq->push_back(make_conv(ndf * prev, ndf * mult, 4, 2, 1, use_bias));
    seq->push_back(make_norm(config.norm, ndf * mult));
    seq->push_back(leaky_relu());
  }
  const int64_t prev = mult;
  mult = std::min<int64_t>(int64_t{1} << std::min(config.n_layers, 3), 8);
  seq->push_back(make_conv(ndf * prev, ndf * mult, 4, 1, 1, use_bias));
  seq->push_back(make_norm(config.norm, ndf * mult));
  seq->push_back(leaky_relu());
  seq->push_back(make_conv(ndf * mult, 1, 4, 1, 1, true));
  model = register_module("model", seq);
}

torch::Tensor NLayerDiscriminatorImpl::forward(torch::Tensor x) { return run_sequential(*model, std::move(x)); }

std::vector<torch::Tensor> NLayerDiscriminatorImpl::forward_features(torch::Tensor x) {
  return run_collecting(*model, std::move(x));
}

torch::Tensor NLayerDiscriminatorImpl::forward_cut(torch::Tensor x) {
  return run_sequential(*model, std::move(x), 0, model->size() - 1);
}

PixelDiscriminatorImpl::PixelDiscriminatorImpl(const DiscriminatorConfig& config) {
  config.validate();
  const bool use_bias = norm_uses_bias(config.norm);
  const int64_t ndf = config.ndf;
  net = register_module("net", torch::nn::Sequential(make_conv(config.input_nc, ndf, 1, 1, 0, true), leaky_relu(),
                                                      make_conv(ndf, ndf * 2, 1, 1, 0, use_bias),
                                                      make_norm(config.norm, ndf * 2), leaky_relu(),
                                                      make_conv(ndf * 2, 1, 1, 1, 0, use_bias)));
}

torch::Tensor PixelDiscriminatorImpl::forward(torch::Tensor x) { return run_sequential(*net, std::move(x)); }

std::vector<torch::Tensor> PixelDiscriminatorImpl::forward_features(torch::Tensor x) {
  return run_collecting(*net, std::move(x));
}

torch::Tensor PixelDiscriminatorImpl::forward_cut(torch::Tensor x) {
  return run_sequential(*net, std::move(x), 0, net->size() - 1);
}

Discriminator make_discriminator(const DiscriminatorConfig& config) {
  config.validate();
  Discriminator d;
  if (config.arch == "pixel") {
    d = std::make_shared<PixelDiscriminatorImpl>(config);
  } else {
    d = std::make_shared<NLayerDiscriminatorImpl>(config);
  }
  init_weights(*d, "normal", 0.02);
  return d;
}

}  // namespace ganlite::nn
