// The interface every generator implements, and the factory that builds one from an ArchConfig.
#pragma once
#include <torch/nn/module.h>
#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

#include "ganlite/nn/arch_config.h"

namespace ganlite::nn {

struct GeneratorOutput {
  torch::Tensor image;
  // Features at the distillation taps, in order: after the last down stage, then after blocks
  // n/3, 2n/3 and n of the trunk (3, 6, 9 for nine blocks). See each generator for its taps.
  std::vector<torch::Tensor> taps;
};

class GeneratorImpl : public torch::nn::Module {
 public:
  explicit GeneratorImpl(ArchConfig config) : config_(std::move(config)) {}
  ~GeneratorImpl() override = default;

  virtual torch::Tensor forward(torch::Tensor x) = 0;
  // The image and the tap features in one pass, without hooks.
  virtual GeneratorOutput forward_with_taps(torch::Tensor x) = 0;
  // Names of the tap layers as state-dict prefixes (for logs and docs), in tap order.
  virtual std::vector<std::string> tap_names() const = 0;

  const ArchConfig& config() const { return config_; }

 protected:
  ArchConfig config_;
};

using Generator = std::shared_ptr<GeneratorImpl>;

// Builds the generator described by `config` (validated first), initialised N(0, 0.02) as the
// public code does for convs; norms at weight 1 / bias 0 unless stated by the architecture.
Generator make_generator(const ArchConfig& config);

}  // namespace ganlite::nn
