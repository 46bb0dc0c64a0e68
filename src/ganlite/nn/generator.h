// The interface every generator implements, and the factory that builds one from an ArchConfig.
#pragma once
#include <torch/nn/module.h>
#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

#include "ganlite/nn/arch_config.h"

namespace ganlite::nn {

// Where a normalisation layer sits in the width layout (ArchConfig::widths) of a generator.
enum class NormRole { stem, down1, trunk, block, up1, up2 };

// A normalisation layer whose |gamma| scores channels for CAT pruning (methods.md 3.1).
struct ScoredNorm {
  std::string name;  // state-dict prefix, e.g. "model.2", "features.0.res_ops.1.1.1"
  NormRole role = NormRole::stem;
  int block = -1;    // NormRole::block: the block index
  int slot = -1;     // NormRole::block: index into widths.blocks[block]; inception 0..5 = res_k1,
                     // res_k3, res_k5, dw_k1, dw_k3, dw_k5 (stable even when absent branches shift keys)
  std::shared_ptr<torch::nn::Module> module;

  // The scale gamma; undefined for a norm without affine parameters.
  torch::Tensor weight() const;
};

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

  // The norms CAT pruning scores, in layer order: stem, down1, trunk (its mask is the residual
  // trunk's), each block's first norm(s), up1, up2. Throws UsageError for arches without them (unet).
  virtual std::vector<ScoredNorm> scored_norms() const = 0;

  const ArchConfig& config() const { return config_; }

 protected:
  ArchConfig config_;
};

using Generator = std::shared_ptr<GeneratorImpl>;

// Builds the generator described by `config` (validated first), initialised N(0, 0.02) as the
// public code does for convs; norms at weight 1 / bias 0 unless stated by the architecture.
Generator make_generator(const ArchConfig& config);

}  // namespace ganlite::nn
