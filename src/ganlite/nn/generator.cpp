#include "ganlite/nn/generator.h"

#include "ganlite/nn/inception_generator.h"
#include "ganlite/nn/init.h"
#include "ganlite/nn/mobile_resnet_generator.h"
#include "ganlite/nn/resnet_generator.h"
#include "ganlite/nn/unet_generator.h"

namespace ganlite::nn {

torch::Tensor ScoredNorm::weight() const {
  if (!module) return {};
  const auto params = module->named_parameters(false);
  const torch::Tensor* w = params.find("weight");
  return w != nullptr ? *w : torch::Tensor();
}

Generator make_generator(const ArchConfig& config) {
  config.validate();
  Generator g;
  if (config.arch == "resnet") {
    g = std::make_shared<ResnetGeneratorImpl>(config);
  } else if (config.arch == "mobile_resnet") {
    g = std::make_shared<MobileResnetGeneratorImpl>(config);
  } else if (config.arch == "inception") {
    g = std::make_shared<InceptionGeneratorImpl>(config);
  } else {
    g = std::make_shared<UnetGeneratorImpl>(config);
  }
  init_weights(*g, "normal", 0.02);
  return g;
}

}  // namespace ganlite::nn
