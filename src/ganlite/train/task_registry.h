// Training tasks as registered entries (`--task`, TrainConfig::task). Each task is one unit
// (pix2pix_task.cpp, cyclegan_task.cpp) defining its TrainTask and a function returning its
// TaskKind: how its data is laid out (training split, validation split, target images), the
// defaults it gives a run, and a factory for its TrainTask. They are listed once in
// GANLITE_TRAIN_TASKS (task_registry.cpp); nothing outside a task's unit branches on its name.
//
// A new task (e.g. semantic image synthesis): `<name>_task.{h,cpp}` with its TrainTask and
// `TaskKind <name>_train_task()`, and one X(<name>) in the list. docs/architecture.md,
// "Extending ganlite".
#pragma once
#include <torch/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ganlite/data/dataset.h"
#include "ganlite/train/task.h"
#include "ganlite/train/train_config.h"
#include "ganlite/train/validation.h"

namespace ganlite::train {

// A split's target images (what the generator should produce): each sample's `b` when `in_b`
// (paired data), else its `a` (a folder of B images).
struct TargetImages {
  std::shared_ptr<data::Dataset> images;
  bool in_b = true;
};

struct TaskKind {
  std::string name;         // --task value, config.json "task", the "task" of exported files
  std::string description;  // one line for --help
  // Each A comes with its B (an aligned A|B dataset): the D is conditional (judges A with B, 6
  // channels), and a distilled student reconstructs B. Unpaired tasks judge B images alone.
  bool paired = false;
  // Defaults TrainConfig::resolved() fills in (CAT's recipes, methods.md 1.3).
  int default_ndf = 64;
  std::string default_gan_mode = "lsgan";
  // The generator norm with learnable scales of CAT's teachers for this task (its pruning ranks
  // channels by them): the default norm of an inception generator.
  std::string scaled_norm = "batch";
  // The --netD a run gets when none is given.
  std::string default_net_d = "basic";
  // The input is a semantic label map (data/label_maps.h: label_nc one-hot channels plus an
  // instance-edge channel) rather than an image: the run's label-map settings apply.
  bool label_maps = false;
  // Channels of the generator's input and of the D's input (the D of a conditional task sees the
  // input and the image together). Unset: 3, and 6 for a paired task / 3 otherwise.
  std::function<int(const TrainConfig&)> generator_input_nc;
  std::function<int(const TrainConfig&)> discriminator_input_nc;
  // The input batch as [N, 3, H, W] images in [-1, 1] for sample grids and the identity
  // baseline; unset: the input is an image already.
  std::function<torch::Tensor(const torch::Tensor&)> preview_input;

  // The training split in the task's layout, with `options` (random crops, flips).
  std::function<std::shared_ptr<data::Dataset>(const TrainConfig&, const data::DatasetOptions&)> open_train_set;
  // The test split to validate on with `options`, or nullopt with the reason in `why`.
  std::function<std::optional<ValidationSet>(const TrainConfig&, const data::DatasetOptions&, std::string* why)>
      open_validation_set;
  // The training split's target images (the mean-image baseline).
  std::function<TargetImages(const TrainConfig&, const data::DatasetOptions&)> open_train_targets;
  // The task's networks, optimizers and losses on `device`, from a resolved config (the caller
  // seeds torch first).
  std::function<std::unique_ptr<TrainTask>(const TrainConfig&, const torch::Device&)> make_task;
};

// Every registered task, in GANLITE_TRAIN_TASKS order.
const std::vector<TaskKind>& task_kinds();
const std::vector<std::string>& task_names();
// nullptr when no task has this name.
const TaskKind* find_task_kind(const std::string& name);
// UsageError "unknown task 'x' (valid: pix2pix, cyclegan)" for an unknown name.
const TaskKind& task_kind(const std::string& name);
// The generator's and the discriminator's input channels for `config`'s task (see TaskKind).
int generator_input_nc(const TrainConfig& config);
int discriminator_input_nc(const TrainConfig& config);
// The task's preview of an input batch as images (the batch itself for image inputs).
torch::Tensor preview_input(const TrainConfig& config, const torch::Tensor& input);

}  // namespace ganlite::train
