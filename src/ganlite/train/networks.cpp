#include "ganlite/train/networks.h"

#include <torch/torch.h>

#include "ganlite/nn/discriminator_registry.h"
#include "ganlite/nn/init.h"

namespace ganlite::train {

nn::Generator build_generator(const TrainConfig& config, int input_nc, int output_nc, const torch::Device& device) {
  nn::ArchConfig arch = config.generator;
  arch.input_nc = input_nc;
  arch.output_nc = output_nc;
  auto generator = nn::make_generator(arch);
  // make_generator already draws N(0, 0.02); anything else is re-drawn as the public init_net does.
  if (config.init_type != "normal" || config.init_gain != 0.02) {
    nn::init_weights(*generator, config.init_type, config.init_gain);
  }
  generator->to(device);
  return generator;
}

nn::DiscriminatorConfig discriminator_config_of(const TrainConfig& config, int input_nc) {
  nn::DiscriminatorConfig d;
  d.arch = config.netD;  // a registered kind (nn/discriminator_registry.h)
  d.input_nc = input_nc;
  d.ndf = config.ndf;
  d.n_layers = config.n_layers_D;
  d.norm = config.norm_D;
  return d.resolved();
}

nn::Discriminator build_discriminator(const TrainConfig& config, int input_nc, const torch::Device& device) {
  auto discriminator = nn::make_discriminator(discriminator_config_of(config, input_nc));
  if (config.init_type != "normal" || config.init_gain != 0.02) {
    nn::init_weights(*discriminator, config.init_type, config.init_gain);
  }
  discriminator->to(device);
  return discriminator;
}

std::map<std::string, std::string> discriminator_metadata_for(const TrainConfig& config, int input_nc) {
  const auto d = discriminator_config_of(config, input_nc);
  return {{"kind", "discriminator"},
          {"arch", nn::discriminator_kind(d.arch).file_arch},
          {"input_nc", std::to_string(input_nc)},
          {"ndf", std::to_string(d.ndf)},
          {"n_layers", std::to_string(d.n_layers)},
          {"norm", d.norm}};
}

void set_requires_grad(torch::nn::Module& module, bool requires_grad) {
  for (auto& p : module.parameters()) p.set_requires_grad(requires_grad);
}

}  // namespace ganlite::train
