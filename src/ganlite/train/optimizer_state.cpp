#include "ganlite/train/optimizer_state.h"

#include <torch/torch.h>

#include <map>

#include "ganlite/torch_compat.h"
#include "ganlite/util/error.h"

namespace ganlite::train {

namespace {
std::string param_prefix(const std::string& prefix, size_t group, size_t index) {
  return prefix + "." + std::to_string(group) + "." + std::to_string(index);
}
}  // namespace

void save_adam_state(const torch::optim::Optimizer& optimizer, const std::string& prefix,
                     std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  const auto& state = optimizer.state();
  const auto& groups = optimizer.param_groups();
  for (size_t g = 0; g < groups.size(); ++g) {
    const auto& params = groups[g].params();
    for (size_t i = 0; i < params.size(); ++i) {
      const auto it = state.find(compat::optimizer_state_key(params[i]));
      if (it == state.end()) continue;
      const auto* adam = dynamic_cast<const torch::optim::AdamParamState*>(it->second.get());
      if (!adam) throw Error("save_adam_state: optimizer '" + prefix + "' is not Adam");
      const std::string p = param_prefix(prefix, g, i);
      tensors.emplace_back(p + ".step", torch::tensor({adam->step()}, torch::kInt64));
      tensors.emplace_back(p + ".exp_avg", adam->exp_avg());
      tensors.emplace_back(p + ".exp_avg_sq", adam->exp_avg_sq());
      if (adam->max_exp_avg_sq().defined()) tensors.emplace_back(p + ".max_exp_avg_sq", adam->max_exp_avg_sq());
    }
  }
}

void load_adam_state(torch::optim::Optimizer& optimizer, const std::string& prefix,
                     const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  std::map<std::string, torch::Tensor> by_name;
  for (const auto& [name, t] : tensors) {
    if (name.rfind(prefix + ".", 0) == 0) by_name.emplace(name, t);
  }
  auto& state = optimizer.state();
  state.clear();
  size_t used = 0;
  auto& groups = optimizer.param_groups();
  for (size_t g = 0; g < groups.size(); ++g) {
    auto& params = groups[g].params();
    for (size_t i = 0; i < params.size(); ++i) {
      const std::string p = param_prefix(prefix, g, i);
      const auto step_it = by_name.find(p + ".step");
      if (step_it == by_name.end()) continue;
      auto fetch = [&](const std::string& suffix, bool required) -> torch::Tensor {
        const auto it = by_name.find(p + suffix);
        if (it == by_name.end()) {
          if (required) throw Error("optimizer state '" + p + suffix + "' missing from the checkpoint");
          return {};
        }
        ++used;
        if (!it->second.sizes().equals(params[i].sizes())) {
          throw Error("optimizer state '" + p + suffix + "' has shape " + c10::str(it->second.sizes()) +
                      " but the parameter has " + c10::str(params[i].sizes()));
        }
        return it->second.to(params[i].device(), params[i].scalar_type()).clone();
      };
      auto adam = std::make_unique<torch::optim::AdamParamState>();
      const auto& step = step_it->second;
      if (step.numel() != 1) throw Error("optimizer state '" + p + ".step' must hold one value");
      ++used;
      adam->step(step.to(torch::kCPU, torch::kInt64).item<int64_t>());
      adam->exp_avg(fetch(".exp_avg", true));
      adam->exp_avg_sq(fetch(".exp_avg_sq", true));
      auto max_sq = fetch(".max_exp_avg_sq", false);
      if (max_sq.defined()) adam->max_exp_avg_sq(max_sq);
      state[compat::optimizer_state_key(params[i])] = std::move(adam);
    }
  }
  if (used != by_name.size()) {
    throw Error("optimizer '" + prefix + "': the checkpoint holds state for " + std::to_string(by_name.size()) +
                " tensors but only " + std::to_string(used) + " match this model's parameters");
  }
}

}  // namespace ganlite::train
