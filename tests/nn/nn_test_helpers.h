// Helpers for the nn tests: state-dict listings in PyTorch's order, small configs.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "ganlite/nn/arch_config.h"

namespace ganlite::testing {

// "key shape" lines (shape as 64x3x7x7) in PyTorch's state_dict order: each module's own
// parameters then buffers, modules in registration (pre-)order; undefined tensors skipped.
inline std::vector<std::string> state_dict_lines(const torch::nn::Module& root) {
  std::vector<std::string> lines;
  auto add = [&](const std::string& prefix, const torch::nn::Module& m) {
    auto emit = [&](const std::string& key, const torch::Tensor& t) {
      if (!t.defined()) return;
      std::string shape;
      for (int64_t d = 0; d < t.dim(); ++d) shape += (d ? "x" : "") + std::to_string(t.size(d));
      lines.push_back((prefix.empty() ? "" : prefix + ".") + key + " " + shape);
    };
    for (const auto& p : m.named_parameters(false)) emit(p.key(), p.value());
    for (const auto& b : m.named_buffers(false)) emit(b.key(), b.value());
  };
  add("", root);
  for (const auto& item : root.named_modules("", false)) add(item.key(), *item.value());
  return lines;
}

inline std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

inline nn::ArchConfig small_config(const std::string& arch, int ngf = 8) {
  nn::ArchConfig c;
  c.arch = arch;
  c.ngf = ngf;
  return c;
}

// The value of `key` in the model's parameters and buffers, or an undefined tensor.
inline torch::Tensor find_tensor(const torch::nn::Module& m, const std::string& key) {
  const auto params = m.named_parameters(true);
  if (const auto* t = params.find(key)) return *t;
  const auto buffers = m.named_buffers(true);
  if (const auto* t = buffers.find(key)) return *t;
  return {};
}

}  // namespace ganlite::testing
