// Learning-rate schedule of the public code (networks.get_scheduler, policy "linear"): constant for
// `n_epochs` epochs, then linear decay towards 0 over `n_epochs_decay` epochs.
#pragma once
#include <torch/optim/optimizer.h>

namespace ganlite::train {

// The multiplier for 0-based `epoch`: 1 - max(0, epoch + 1 - n_epochs) / (n_epochs_decay + 1).
double linear_lr_factor(int64_t epoch, int64_t n_epochs, int64_t n_epochs_decay);

// Sets the learning rate of every parameter group of an Adam optimizer.
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);
double learning_rate(const torch::optim::Optimizer& optimizer);

}  // namespace ganlite::train
