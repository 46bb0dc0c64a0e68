// Shared by the interop tests: fixture paths, the PyTorch reference outputs, tiny configs.
#pragma once
#include <torch/torch.h>

#include <string>

#include "ganlite/io/pth.h"
#include "ganlite/nn/generator.h"

namespace ganlite::testing {

inline std::string interop_fixture(const std::string& name) {
  return std::string(GANLITE_FIXTURES_DIR) + "/interop/" + name;
}

// The named tensor of a state dict, or an undefined tensor.
inline torch::Tensor find_named(const io::NamedTensors& tensors, const std::string& key) {
  for (const auto& [name, t] : tensors) {
    if (name == key) return t;
  }
  return {};
}

// Random BatchNorm statistics and affine norm parameters, so folding and scales are exercised.
inline void randomize_norms(torch::nn::Module& module, uint64_t seed = 3) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(seed);
  for (const auto& item : module.named_modules()) {
    for (auto& p : item.value()->named_parameters(false)) {
      if (p.value().dim() == 1 && p.key() == "weight") p.value().uniform_(0.5, 1.5);
      if (p.value().dim() == 1 && p.key() == "bias") p.value().normal_(0, 0.2);
    }
    for (auto& b : item.value()->named_buffers(false)) {
      if (b.key() == "running_mean") b.value().normal_(0, 0.2);
      if (b.key() == "running_var") b.value().uniform_(0.5, 1.5);
    }
  }
}

inline nn::ArchConfig tiny_config(const std::string& arch, const std::string& norm, int ngf = 4, int n_blocks = 2) {
  nn::ArchConfig c;
  c.arch = arch;
  c.norm = norm;
  c.ngf = ngf;
  c.n_blocks = n_blocks;
  c.num_downs = 5;
  return c;
}

}  // namespace ganlite::testing
