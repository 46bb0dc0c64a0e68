// Building the networks a training task needs from a TrainConfig: generators and discriminators
// with the configured init, on the run's device.
#pragma once
#include <torch/nn/module.h>
#include <torch/types.h>

#include <map>
#include <string>

#include "ganlite/nn/discriminator.h"
#include "ganlite/nn/generator.h"
#include "ganlite/train/train_config.h"

namespace ganlite::train {

// The configured generator (input_nc -> output_nc), initialised with init_type / init_gain.
nn::Generator build_generator(const TrainConfig& config, int input_nc, int output_nc, const torch::Device& device);
// The discriminator of kind netD (nn/discriminator_registry.h) with ndf, n_layers_D and norm_D, resolved.
nn::DiscriminatorConfig discriminator_config_of(const TrainConfig& config, int input_nc);
// That discriminator, initialised with init_type / init_gain.
nn::Discriminator build_discriminator(const TrainConfig& config, int input_nc, const torch::Device& device);

// File metadata describing build_discriminator(config, input_nc): kind, arch, input_nc, ndf, n_layers, norm.
std::map<std::string, std::string> discriminator_metadata_for(const TrainConfig& config, int input_nc);

void set_requires_grad(torch::nn::Module& module, bool requires_grad);

}  // namespace ganlite::train
