// Adam's per-parameter state (step, exp_avg, exp_avg_sq[, max_exp_avg_sq]) as named tensors, so
// a resumed run continues with bit-identical moments. LibTorch keys the state by the parameter's
// TensorImpl address, which changes between processes: we name it by (group, index) instead.
#pragma once
#include <torch/optim/optimizer.h>

#include <string>
#include <utility>
#include <vector>

namespace ganlite::train {

// Appends "<prefix>.<group>.<index>.{step,exp_avg,exp_avg_sq[,max_exp_avg_sq]}" for every
// parameter that has state.
void save_adam_state(const torch::optim::Optimizer& optimizer, const std::string& prefix,
                     std::vector<std::pair<std::string, torch::Tensor>>& tensors);
// Rebuilds the state from `tensors` (onto each parameter's device); parameters without saved
// state get none (as before their first step). Throws Error naming a key on a shape mismatch.
void load_adam_state(torch::optim::Optimizer& optimizer, const std::string& prefix,
                     const std::vector<std::pair<std::string, torch::Tensor>>& tensors);

}  // namespace ganlite::train
