// Building the networks a training task needs from a TrainConfig: generators (nn::make_generator
// plus the configured init) and discriminators behind one small handle, so tasks do not depend on
// the discriminator classes' details.
#pragma once
#include <torch/nn/module.h>
#include <torch/types.h>

#include <functional>
#include <memory>

#include "ganlite/nn/generator.h"
#include "ganlite/train/train_config.h"

namespace ganlite::train {

struct DiscriminatorNet {
  std::shared_ptr<torch::nn::Module> module;
  std::function<torch::Tensor(const torch::Tensor&)> forward;
  torch::Tensor operator()(const torch::Tensor& x) const { return forward(x); }
};

// The configured generator (input_nc -> output_nc), initialised with init_type / init_gain, on `device`.
nn::Generator build_generator(const TrainConfig& config, int input_nc, int output_nc, const torch::Device& device);
// netD basic / n_layers (PatchGAN, config.n_layers_D) or pixel, with ndf and norm_D, initialised, on `device`.
DiscriminatorNet build_discriminator(const TrainConfig& config, int input_nc, const torch::Device& device);

void set_requires_grad(torch::nn::Module& module, bool requires_grad);

}  // namespace ganlite::train
