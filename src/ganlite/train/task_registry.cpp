#include "ganlite/train/task_registry.h"

#include "ganlite/util/registry.h"

// The registered tasks, in --help order. Each unit defines `TaskKind <x>_train_task()`. The
// library is a static archive: an object file that registered itself from a static initialiser
// but that nothing references would be dropped by the linker, so the list is explicit. A new
// task adds one X(name) here.
#define GANLITE_TRAIN_TASKS(X) X(pix2pix) X(cyclegan) X(spade)

namespace ganlite::train {

#define GANLITE_DECLARE_TRAIN_TASK(name) TaskKind name##_train_task();
GANLITE_TRAIN_TASKS(GANLITE_DECLARE_TRAIN_TASK)
#undef GANLITE_DECLARE_TRAIN_TASK

namespace {

std::vector<TaskKind> build_registry() {
#define GANLITE_LIST_TRAIN_TASK(name) name##_train_task(),
  std::vector<TaskKind> tasks{GANLITE_TRAIN_TASKS(GANLITE_LIST_TRAIN_TASK)};
#undef GANLITE_LIST_TRAIN_TASK
  check_unique_names(tasks, "training task");
  for (const auto& t : tasks) {
    if (!t.open_train_set || !t.open_validation_set || !t.open_train_targets || !t.make_task) {
      throw Error("training task '" + t.name + "' lacks a dataset opener or a factory");
    }
  }
  return tasks;
}

}  // namespace

const std::vector<TaskKind>& task_kinds() {
  static const std::vector<TaskKind> tasks = build_registry();
  return tasks;
}

const std::vector<std::string>& task_names() {
  static const std::vector<std::string> names = entry_names(task_kinds());
  return names;
}

const TaskKind* find_task_kind(const std::string& name) { return find_entry(task_kinds(), name); }

const TaskKind& task_kind(const std::string& name) { return entry_or_throw(task_kinds(), name, "task"); }

int generator_input_nc(const TrainConfig& config) {
  const TaskKind& kind = task_kind(config.task);
  return kind.generator_input_nc ? kind.generator_input_nc(config) : 3;
}

int discriminator_input_nc(const TrainConfig& config) {
  const TaskKind& kind = task_kind(config.task);
  if (kind.discriminator_input_nc) return kind.discriminator_input_nc(config);
  return kind.paired ? 6 : 3;
}

torch::Tensor preview_input(const TrainConfig& config, const torch::Tensor& input) {
  const TaskKind& kind = task_kind(config.task);
  return kind.preview_input ? kind.preview_input(input) : input;
}

}  // namespace ganlite::train
