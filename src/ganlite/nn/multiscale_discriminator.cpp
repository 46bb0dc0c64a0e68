#include "ganlite/nn/multiscale_discriminator.h"

#include <torch/torch.h>

#include <algorithm>
#include <string>

#include "ganlite/nn/discriminator_registry.h"
#include "ganlite/nn/forward_trace.h"
#include "ganlite/nn/layers.h"

namespace ganlite::nn {

namespace {

constexpr int64_t kKernel = 4;
constexpr int64_t kPad = 2;             // ceil((4 - 1) / 2), as SPADE's padw

torch::nn::LeakyReLU leaky_relu() { return torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(0.2)); }

// Widths of the four conv stages: ndf, then min(nf * 2, 512) (SPADE caps at 512, not 8 ndf).
std::vector<int64_t> stage_widths(int64_t ndf) {
  std::vector<int64_t> widths{ndf};
  for (int n = 1; n < kMultiscaleLayers; ++n) widths.push_back(std::min<int64_t>(widths.back() * 2, 512));
  return widths;
}

int64_t multiscale_conv_weight_count(const DiscriminatorConfig& c) {
  const auto widths = stage_widths(c.ndf);
  int64_t per_scale = c.input_nc * widths[0] * kKernel * kKernel;
  for (size_t i = 1; i < widths.size(); ++i) per_scale += widths[i - 1] * widths[i] * kKernel * kKernel;
  per_scale += widths.back() * kKernel * kKernel;
  return per_scale * kMultiscaleNumD;
}

}  // namespace

MultiscaleNLayerImpl::MultiscaleNLayerImpl(const DiscriminatorConfig& config) {
  const auto widths = stage_widths(config.ndf);
  auto first = torch::nn::Sequential(make_conv(config.input_nc, widths[0], kKernel, 2, kPad, true), leaky_relu());
  stages.push_back(register_module("model0", first));
  for (int n = 1; n < kMultiscaleLayers; ++n) {
    const int64_t stride = n == kMultiscaleLayers - 1 ? 1 : 2;
    NestedSequential conv_norm;
    conv_norm->push_back(SpectralNormConv2d(widths[n - 1], widths[n], kKernel, stride, kPad));
    if (config.norm != "none") conv_norm->push_back(make_norm(config.norm, widths[n]));
    stages.push_back(register_module("model" + std::to_string(n), torch::nn::Sequential(conv_norm, leaky_relu())));
  }
  auto last = torch::nn::Sequential(make_conv(widths.back(), 1, kKernel, 1, kPad, true));
  stages.push_back(register_module("model" + std::to_string(kMultiscaleLayers), last));
}

DiscriminatorScale MultiscaleNLayerImpl::forward(torch::Tensor x) {
  DiscriminatorScale scale;
  for (size_t i = 0; i < stages.size(); ++i) {
    x = run_sequential(*stages[i], x);
    if (i + 1 < stages.size()) scale.features.push_back(x);
  }
  scale.logits = x;
  return scale;
}

MultiscaleDiscriminatorImpl::MultiscaleDiscriminatorImpl(const DiscriminatorConfig& config) {
  config.validate();
  for (int i = 0; i < kMultiscaleNumD; ++i) {
    scales.push_back(register_module("discriminator_" + std::to_string(i), MultiscaleNLayer(config)));
  }
}

DiscriminatorOutput MultiscaleDiscriminatorImpl::forward(torch::Tensor x) {
  DiscriminatorOutput out;
  for (size_t i = 0; i < scales.size(); ++i) {
    out.scales.push_back(scales[i]->forward(x));
    if (i + 1 < scales.size()) {
      x = torch::avg_pool2d(x, /*kernel_size=*/3, /*stride=*/2, /*padding=*/1, /*ceil_mode=*/false,
                            /*count_include_pad=*/false);
    }
  }
  return out;
}

DiscriminatorKind multiscale_discriminator_kind() {
  DiscriminatorKind k;
  k.name = "multiscale";
  k.description = "SPADE's two-scale PatchGAN: 4 layers, spectral norm, --norm-D (instance), labels + image";
  k.file_arch = "multiscale";
  k.fixed_n_layers = kMultiscaleLayers;
  k.build = [](const DiscriminatorConfig& c) -> Discriminator {
    return std::make_shared<MultiscaleDiscriminatorImpl>(c);
  };
  k.conv_weight_count = multiscale_conv_weight_count;
  return k;
}

}  // namespace ganlite::nn
