// The training loop every task shares (pix2pix, CycleGAN, and the distillers later): epochs of
// seeded batches, lr schedule, progress bar, metrics.jsonl, sample grids, per-epoch validation,
// checkpoints (latest / best / every K epochs), exact resume, SIGINT/SIGTERM handling and the
// non-finite loss guard.
//
// RUN_DIR layout:
//   config.json                        effective TrainConfig (TrainerOptions::config_json)
//   metrics.jsonl                      one line per logged step (every log_freq, and the last)
//   val.jsonl                          one line per validated epoch
//   samples/step_000500.png            input | output | target
//   checkpoints/latest.ckpt.safetensors   full training state (one file, atomic)
//   checkpoints/{latest,best,epoch_005}_net_G.safetensors (and _net_D; CycleGAN _net_G_A ...)
#pragma once
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "ganlite/train/task.h"
#include "ganlite/train/train_checkpoint.h"
#include "ganlite/train/train_config.h"

namespace ganlite::train {

// Builds the task of a run from its resolved config (make_task, or a distiller's factory).
// `fresh_start` is false when the run continues from its checkpoint (which then supplies every
// weight, so files the config names for initial weights need not be read).
using TaskFactory = std::function<std::unique_ptr<TrainTask>(const TrainConfig& config, const torch::Device& device,
                                                             bool fresh_start)>;

struct TrainerOptions {
  std::filesystem::path run_dir;
  // Continue from run_dir/checkpoints/latest.ckpt.safetensors. train() decides it from the run
  // folder (run_folder.h): a run without a checkpoint yet starts again from step 0.
  bool resume = false;
  // Called after every step with the losses (tests inject non-finite values here).
  std::function<void(int64_t global_step, Losses& losses)> after_step_hook;
  // Used by train() instead of make_task when set: compress/ passes its distiller this way, so
  // train/ never includes compress/ headers.
  TaskFactory task_factory;
  // The run's config as written to RUN_DIR/config.json (and into each checkpoint), given the
  // resolved TrainConfig; TrainConfig::to_json when unset. A distiller adds its typed settings
  // as the "distill" section this way (compress::DistillRunConfig::to_json).
  std::function<nlohmann::json(const TrainConfig& config)> config_json;
};

struct TrainResult {
  int64_t iterations = 0;   // this session
  TrainingProgress progress;  // final position
  Losses final_losses;
  bool finished = false;    // all epochs done (false when stopped by max_iters)
  std::filesystem::path latest_checkpoint;
  std::vector<std::filesystem::path> generator_files;  // latest_net_*.safetensors
  std::filesystem::path best_generator;                 // empty when no validation ran
};

// Throws UsageError for a bad task name. (A distillation run needs the distiller's factory, see
// TrainerOptions::task_factory.)
std::unique_ptr<TrainTask> make_task(const TrainConfig& config, const torch::Device& device);

std::filesystem::path latest_checkpoint_path(const std::filesystem::path& run_dir);

class Trainer {
 public:
  // `config` must be resolved; `task` built from it (make_task, or a distiller).
  Trainer(TrainConfig config, TrainerOptions options, std::unique_ptr<TrainTask> task);
  // Runs to the end (or max_iters). Throws Error on a non-finite loss (keeping the last good
  // checkpoint) and after saving a checkpoint when SIGINT / SIGTERM arrived.
  TrainResult run();

  TrainTask& task() { return *task_; }

 private:
  TrainConfig config_;
  TrainerOptions options_;
  std::unique_ptr<TrainTask> task_;
};

// Sets up a run directory (prepare_run_folder: stale temporaries removed, a run that never
// saved a checkpoint started again from step 0, a new start over a saved run refused) and runs
// the task `config.task`. On resume `config` is the run's stored config, with the session
// settings (device, threads, max_iters) the caller allows to change.
TrainResult train(const TrainConfig& config, const TrainerOptions& options);

}  // namespace ganlite::train
