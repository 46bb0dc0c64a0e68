// MACs and parameters by the papers' convention (methods.md section 5), measured by running one
// forward pass (batch 1) and recording every leaf layer's output shape through forward_trace.h:
//   conv:            output elements x (C_in / groups) x kH x kW   (bias not counted)
//   conv-transpose:  output elements x (C_in / groups) x kH x kW   (at the OUTPUT resolution)
//   affine norm (BatchNorm, affine InstanceNorm): output elements; non-affine norm: 0
//   everything else (activations, padding, additions, dropout): 0
// MacRules::cat_search() gives the counting CAT's pruning search uses instead (see MacRules).
#pragma once
#include <torch/nn/module.h>
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "ganlite/nn/arch_config.h"
#include "ganlite/nn/generator.h"

namespace ganlite::nn {

struct LayerProfile {
  std::string name;  // state-dict prefix, e.g. "model.10.conv_block.1"
  std::string type;  // "Conv2d", "InstanceNorm2d", ...
  std::vector<int64_t> output_shape;
  int64_t macs = 0;
  int64_t params = 0;  // the layer's own parameters
};

struct ModelProfile {
  int64_t macs = 0;
  int64_t params = 0;  // every parameter of the model (buffers excluded)
  std::vector<LayerProfile> layers;  // in execution order

  nlohmann::json to_json(bool with_layers) const;
};

// Which layers count. The default is methods.md section 5 (what every figure reports).
struct MacRules {
  // CAT's profiler (snap-research/CAT utils/model_profiling.py, module_profiling) gives a
  // BatchNorm2d with track_running_stats 0 MACs, and its search (utils/common.py,
  // shrink_model) compares that count with the budget.
  bool count_batchnorm_with_running_stats = true;
  static MacRules cat_search() { return MacRules{false}; }
};

// MACs of one leaf layer given its output (0 for layers that do not count).
int64_t layer_macs(const torch::nn::Module& layer, const torch::Tensor& output, const MacRules& rules = {});

// Number of elements over all (defined) parameters of `module`, recursively.
int64_t count_parameters(const torch::nn::Module& module);

// Profiles whatever `run_forward` executes on `model` (in eval mode, without gradients; the
// training flag is restored afterwards).
ModelProfile profile_forward(torch::nn::Module& model, const std::function<void()>& run_forward,
                             const MacRules& rules = {});

// Profiles `generator` on a zero input of 1 x input_nc x size x size on the generator's device.
ModelProfile profile_generator(GeneratorImpl& generator, int64_t input_size, const MacRules& rules = {});

// The same on a 1 x input_nc x height x width input (GauGAN's 256x512).
ModelProfile profile_generator(GeneratorImpl& generator, int64_t height, int64_t width, const MacRules& rules = {});

// Builds the generator for `config` on `device` and profiles it.
ModelProfile profile_generator(const ArchConfig& config, int64_t input_size,
                               const torch::Device& device = torch::kCPU, const MacRules& rules = {});

// "56.80G", "1.41G", "812.5M": MACs as the papers print them.
std::string format_macs(int64_t macs);
// "11.378M", "0.137M": parameters as the papers print them.
std::string format_params(int64_t params);

}  // namespace ganlite::nn
