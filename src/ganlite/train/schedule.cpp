#include "ganlite/train/schedule.h"

#include <torch/torch.h>

#include <algorithm>

#include "ganlite/util/error.h"

namespace ganlite::train {

double linear_lr_factor(int64_t epoch, int64_t n_epochs, int64_t n_epochs_decay) {
  const double decayed = static_cast<double>(std::max<int64_t>(0, epoch + 1 - n_epochs));
  return 1.0 - decayed / static_cast<double>(n_epochs_decay + 1);
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) {
    auto* adam = dynamic_cast<torch::optim::AdamOptions*>(&group.options());
    if (!adam) throw Error("set_learning_rate: only Adam optimizers are supported");
    adam->lr(lr);
  }
}

double learning_rate(const torch::optim::Optimizer& optimizer) {
  const auto& groups = optimizer.param_groups();
  if (groups.empty()) return 0.0;
  const auto* adam = dynamic_cast<const torch::optim::AdamOptions*>(&groups.front().options());
  if (!adam) throw Error("learning_rate: only Adam optimizers are supported");
  return adam->lr();
}

}  // namespace ganlite::train
