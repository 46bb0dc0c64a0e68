#include "ganlite/nn/spectral_norm.h"

#include <torch/torch.h>

#include <unordered_map>

#include "ganlite/nn/forward_trace.h"
#include "ganlite/util/error.h"
#include "ganlite/util/text.h"

namespace ganlite::nn {

namespace {

constexpr double kSpectralEps = 1e-12;  // torch.nn.utils.spectral_norm's default

torch::Tensor normalize_spectral(const torch::Tensor& v) { return v / v.norm().clamp_min(kSpectralEps); }

bool has_suffix(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

SpectralNormConv2dImpl::SpectralNormConv2dImpl(int64_t in, int64_t out, int64_t kernel, int64_t stride_,
                                               int64_t padding_, bool with_bias)
    : stride(stride_), padding(padding_) {
  weight_orig = register_parameter("weight_orig", torch::randn({out, in, kernel, kernel}) * 0.02);
  if (with_bias) bias = register_parameter("bias", torch::zeros({out}));
  // spectral_norm draws u and v from N(0, 1) and normalises them.
  weight_u = register_buffer("weight_u", normalize_spectral(torch::randn({out})));
  weight_v = register_buffer("weight_v", normalize_spectral(torch::randn({in * kernel * kernel})));
}

torch::Tensor SpectralNormConv2dImpl::normalized_weight() const {
  const auto matrix = weight_orig.reshape({weight_orig.size(0), -1});
  const auto sigma = torch::dot(weight_u, torch::mv(matrix, weight_v));
  return weight_orig / sigma;
}

torch::Tensor SpectralNormConv2dImpl::forward(torch::Tensor x) {
  if (is_training()) {
    torch::NoGradGuard no_grad;
    const auto matrix = weight_orig.reshape({weight_orig.size(0), -1});
    weight_v.copy_(normalize_spectral(torch::mv(matrix.t(), weight_u)));
    weight_u.copy_(normalize_spectral(torch::mv(matrix, weight_v)));
  }
  const auto y = torch::conv2d(x, normalized_weight(), bias, stride, padding);
  return report_layer(*this, y);
}

size_t fold_spectral_norm(std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  std::unordered_map<std::string, torch::Tensor> by_name;
  for (const auto& [name, t] : tensors) by_name.emplace(name, t);
  std::vector<std::pair<std::string, torch::Tensor>> folded;
  size_t count = 0;
  for (const auto& [name, t] : tensors) {
    if (has_suffix(name, ".weight_u") || has_suffix(name, ".weight_v")) {
      const std::string base = name.substr(0, name.size() - 2);
      if (by_name.count(base + "_orig")) continue;  // consumed with its weight_orig
    }
    if (!has_suffix(name, ".weight_orig")) {
      folded.emplace_back(name, t);
      continue;
    }
    const std::string prefix = name.substr(0, name.size() - 5);  // NAME.weight
    const auto u = by_name.find(prefix + "_u"), v = by_name.find(prefix + "_v");
    if (u == by_name.end() || v == by_name.end()) {
      throw Error("'" + name + "' (spectral norm) comes without '" + prefix + "_u' and '" + prefix + "_v'");
    }
    const torch::Tensor w = t.to(torch::kFloat64), mat = w.reshape({w.size(0), -1});
    if (u->second.dim() != 1 || v->second.dim() != 1 || u->second.size(0) != mat.size(0) ||
        v->second.size(0) != mat.size(1)) {
      throw Error("'" + prefix + "_u' / '_v' do not match '" + name + "' " + shape_text(t.sizes()));
    }
    const torch::Tensor sigma = torch::dot(u->second.to(torch::kFloat64), torch::mv(mat, v->second.to(torch::kFloat64)));
    folded.emplace_back(prefix, (w / sigma).to(t.scalar_type()));
    ++count;
  }
  if (count > 0) tensors = std::move(folded);
  return count;
}

}  // namespace ganlite::nn
