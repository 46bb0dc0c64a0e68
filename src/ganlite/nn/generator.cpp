#include "ganlite/nn/generator.h"

#include "ganlite/nn/generator_family.h"
#include "ganlite/nn/init.h"

namespace ganlite::nn {

torch::Tensor ScoredNorm::weight() const {
  if (!module) return {};
  const auto params = module->named_parameters(false);
  const torch::Tensor* w = params.find("weight");
  return w != nullptr ? *w : torch::Tensor();
}

Generator make_generator(const ArchConfig& config) {
  config.validate();
  Generator g = generator_family(config.arch).build(config);
  init_weights(*g, "normal", 0.02);
  return g;
}

}  // namespace ganlite::nn
