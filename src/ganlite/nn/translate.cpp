#include "ganlite/nn/translate.h"

#include <torch/torch.h>

#include "ganlite/nn/arch_config.h"

namespace ganlite::nn {

torch::Tensor translate_padded(GeneratorImpl& generator, const torch::Tensor& images) {
  return translate_padded([&](const torch::Tensor& x) { return generator.forward(x); }, images,
                          size_multiple(generator.config()));
}

torch::Tensor translate_padded(const std::function<torch::Tensor(const torch::Tensor&)>& forward,
                               const torch::Tensor& images, int64_t multiple) {
  torch::NoGradGuard no_grad;
  const int64_t h = images.size(2), w = images.size(3);
  const int64_t pad_h = (multiple - h % multiple) % multiple;
  const int64_t pad_w = (multiple - w % multiple) % multiple;
  if (pad_h == 0 && pad_w == 0) return forward(images);
  // Reflect padding needs pad < size; tiny images (a UNet wants 256-multiples) fall back to replicate.
  const bool reflect_ok = pad_h < h && pad_w < w;
  namespace F = torch::nn::functional;
  const auto mode = reflect_ok ? F::PadFuncOptions::mode_t(torch::kReflect) : F::PadFuncOptions::mode_t(torch::kReplicate);
  const auto padded = F::pad(images, F::PadFuncOptions({0, pad_w, 0, pad_h}).mode(mode));
  const auto out = forward(padded);
  return out.slice(2, 0, h).slice(3, 0, w);
}

}  // namespace ganlite::nn
