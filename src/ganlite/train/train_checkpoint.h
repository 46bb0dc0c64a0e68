// The training checkpoint: ONE safetensors file, written atomically, holding every network
// ("G.model.1.weight", "D.model.0.weight", ...), every Adam state ("opt_G.0.3.exp_avg"), torch's
// RNG state(s), the task's extra state (pools) and the loop's position in __metadata__.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include "ganlite/train/task.h"

namespace ganlite::train {

// Where the loop stands. `epoch_iter` batches of `epoch` (0-based) are done; `global_step`
// iterations in total.
struct TrainingProgress {
  int64_t epoch = 0;
  int64_t epoch_iter = 0;
  int64_t global_step = 0;
  double wall_seconds = 0.0;  // training time summed over every session of the run
  double best_psnr = -1.0;    // best validation PSNR so far (-1: none yet)
  int64_t best_epoch = -1;
};

inline constexpr const char* kTrainingCheckpointKind = "training_checkpoint";

void save_training_checkpoint(const std::filesystem::path& path, TrainTask& task, const TrainingProgress& progress,
                              const std::string& config_json);
// Restores the task's networks, optimizers, extra state and torch's RNG from `path`, onto
// `device`. Throws Error naming the file when it is missing, malformed or of another task.
TrainingProgress load_training_checkpoint(const std::filesystem::path& path, TrainTask& task,
                                          const torch::Device& device);

}  // namespace ganlite::train
