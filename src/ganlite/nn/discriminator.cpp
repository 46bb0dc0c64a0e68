#include "ganlite/nn/discriminator.h"

#include <algorithm>

#include <torch/nn/modules/activation.h>

#include "ganlite/nn/discriminator_registry.h"
#include "ganlite/nn/forward_trace.h"
#include "ganlite/nn/init.h"
#include "ganlite/nn/layers.h"
#include "ganlite/util/error.h"

namespace ganlite::nn {

namespace {
torch::nn::LeakyReLU leaky_relu() { return torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(0.2)); }

// Runs `seq` as one scale: the output of every LeakyReLU as features, the last output as logits.
DiscriminatorOutput run_one_scale(torch::nn::SequentialImpl& seq, torch::Tensor x) {
  DiscriminatorScale scale;
  for (size_t i = 0; i < seq.size(); ++i) {
    x = run_sequential(seq, x, i, i + 1);
    if (seq.ptr(i)->as<torch::nn::LeakyReLUImpl>() != nullptr) scale.features.push_back(x);
  }
  scale.logits = x;
  DiscriminatorOutput out;
  out.scales.push_back(std::move(scale));
  return out;
}

int64_t n_layer_conv_weight_count(const DiscriminatorConfig& c) {
  const int64_t in = c.input_nc, width = c.ndf;
  int64_t n = in * width * 16;  // 4x4 kernels throughout
  int64_t mult = 1;
  for (int i = 1; i < c.n_layers; ++i) {
    const int64_t prev = mult;
    mult = std::min<int64_t>(int64_t{1} << i, 8);
    n += width * prev * width * mult * 16;
  }
  const int64_t prev = mult;
  mult = std::min<int64_t>(int64_t{1} << std::min(c.n_layers, 3), 8);
  return n + width * prev * width * mult * 16 + width * mult * 16;
}

DiscriminatorKind n_layer_kind(const std::string& name) {
  DiscriminatorKind k;
  k.name = name;
  k.file_arch = "n_layers";
  k.build = [](const DiscriminatorConfig& c) -> Discriminator { return NLayerDiscriminator(c).ptr(); };
  k.conv_weight_count = n_layer_conv_weight_count;
  return k;
}
}  // namespace

void DiscriminatorConfig::validate() const {
  discriminator_kind(arch);  // names the valid kinds for an unknown one
  check_norm(norm);
  require(input_nc > 0, "discriminator input_nc must be positive, got " + std::to_string(input_nc));
  require(ndf > 0, "ndf must be positive, got " + std::to_string(ndf));
  require(n_layers >= 1, "discriminator n_layers must be >= 1, got " + std::to_string(n_layers));
}

DiscriminatorConfig DiscriminatorConfig::resolved() const {
  DiscriminatorConfig c = *this;
  const auto& kind = discriminator_kind(arch);
  if (kind.fixed_n_layers > 0) c.n_layers = kind.fixed_n_layers;
  return c;
}

int64_t DiscriminatorConfig::conv_weight_count() const {
  const DiscriminatorConfig c = resolved();
  return discriminator_kind(c.arch).conv_weight_count(c);
}

// PatchGAN of pytorch-CycleGAN-and-pix2pix: `--netD basic` is the 70x70 one (3 layers),
// `--netD n_layers` the same with --n-layers-D.
DiscriminatorKind basic_discriminator_kind() {
  DiscriminatorKind k = n_layer_kind("basic");
  k.description = "70x70 PatchGAN (n_layers with 3 layers)";
  k.fixed_n_layers = 3;
  return k;
}

DiscriminatorKind n_layers_discriminator_kind() {
  DiscriminatorKind k = n_layer_kind("n_layers");
  k.description = "PatchGAN with --n-layers-D stride-2 convs";
  return k;
}

DiscriminatorKind pixel_discriminator_kind() {
  DiscriminatorKind k;
  k.name = "pixel";
  k.description = "1x1 PixelGAN: judges every pixel on its own";
  k.file_arch = "pixel";
  k.build = [](const DiscriminatorConfig& c) -> Discriminator { return PixelDiscriminator(c).ptr(); };
  k.conv_weight_count = [](const DiscriminatorConfig& c) {
    const int64_t in = c.input_nc, width = c.ndf;
    return in * width + width * 2 * width + 2 * width;
  };
  return k;
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

DiscriminatorOutput NLayerDiscriminatorImpl::forward(torch::Tensor x) { return run_one_scale(*model, std::move(x)); }

PixelDiscriminatorImpl::PixelDiscriminatorImpl(const DiscriminatorConfig& config) {
  config.validate();
  const bool use_bias = norm_uses_bias(config.norm);
  const int64_t ndf = config.ndf;
  net = register_module("net", torch::nn::Sequential(make_conv(config.input_nc, ndf, 1, 1, 0, true), leaky_relu(),
                                                      make_conv(ndf, ndf * 2, 1, 1, 0, use_bias),
                                                      make_norm(config.norm, ndf * 2), leaky_relu(),
                                                      make_conv(ndf * 2, 1, 1, 1, 0, use_bias)));
}

DiscriminatorOutput PixelDiscriminatorImpl::forward(torch::Tensor x) { return run_one_scale(*net, std::move(x)); }

Discriminator make_discriminator(const DiscriminatorConfig& config) {
  config.validate();
  const DiscriminatorConfig c = config.resolved();
  Discriminator d = discriminator_kind(c.arch).build(c);
  init_weights(*d, "normal", 0.02);
  return d;
}

}  // namespace ganlite::nn
