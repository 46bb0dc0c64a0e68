#include "ganlite/train/train_checkpoint.h"

#include <ATen/Context.h>
#include <torch/torch.h>

#include "ganlite/io/checkpoint.h"
#include "ganlite/io/safetensors.h"
#include "ganlite/train/optimizer_state.h"
#include "ganlite/util/error.h"

namespace ganlite::train {

namespace fs = std::filesystem;

namespace {

torch::Tensor rng_state(const torch::Device& device) {
  auto generator = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

void set_rng_state(const torch::Device& device, const torch::Tensor& state) {
  auto generator = at::globalContext().defaultGenerator(device);
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state);
}

// A metadata value read whole ("12abc" is no number), with the file and key in the error.
template <typename T, typename Parse>
T parse_number(const Metadata& meta, const std::string& key, const fs::path& path, Parse parse) {
  const auto it = meta.find(key);
  if (it == meta.end()) throw Error("training checkpoint '" + path.string() + "' lacks metadata '" + key + "'");
  try {
    size_t used = 0;
    const T value = parse(it->second, &used);
    if (used == it->second.size()) return value;
  } catch (const std::exception&) {  // std::invalid_argument, std::out_of_range
  }
  throw Error("training checkpoint '" + path.string() + "': metadata '" + key + "' is not a number: '" + it->second +
              "'");
}

int64_t parse_int(const Metadata& meta, const std::string& key, const fs::path& path) {
  return parse_number<int64_t>(meta, key, path, [](const std::string& s, size_t* used) { return std::stoll(s, used); });
}

double parse_double(const Metadata& meta, const std::string& key, const fs::path& path) {
  return parse_number<double>(meta, key, path, [](const std::string& s, size_t* used) { return std::stod(s, used); });
}

std::string exact(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

}  // namespace

void save_training_checkpoint(const fs::path& path, TrainTask& task, const TrainingProgress& progress,
                              const std::string& config_json) {
  NamedTensors tensors;
  Metadata meta;
  meta[io::kMetaFormat] = "ganlite";
  meta[io::kMetaKind] = kTrainingCheckpointKind;
  meta["task"] = task.name();
  meta["epoch"] = std::to_string(progress.epoch);
  meta["epoch_iter"] = std::to_string(progress.epoch_iter);
  meta["global_step"] = std::to_string(progress.global_step);
  meta["wall_seconds"] = exact(progress.wall_seconds);
  meta["best_psnr"] = exact(progress.best_psnr);
  meta["best_epoch"] = std::to_string(progress.best_epoch);
  meta["config"] = config_json;

  std::string module_names;
  for (const auto& [name, module] : task.modules()) {
    module_names += (module_names.empty() ? "" : ",") + name;
    for (const auto& [key, t] : io::state_dict(*module)) tensors.emplace_back(name + "." + key, t);
  }
  meta["modules"] = module_names;
  for (const auto& [name, optimizer] : task.optimizers()) save_adam_state(*optimizer, "opt_" + name, tensors);

  tensors.emplace_back("rng.cpu", rng_state(torch::kCPU));
  for (const auto& [name, module] : task.modules()) {
    for (const auto& p : module->parameters()) {
      if (p.is_cuda()) {
        tensors.emplace_back("rng.cuda", rng_state(p.device()));
        meta["rng_cuda_device"] = std::to_string(p.device().index());
        break;
      }
    }
    if (meta.count("rng_cuda_device")) break;
  }
  task.save_extra_state(tensors, meta);
  io::save_safetensors(path, tensors, meta);
}

TrainingProgress load_training_checkpoint(const fs::path& path, TrainTask& task, const torch::Device& device) {
  if (!fs::exists(path)) throw Error("training checkpoint '" + path.string() + "' does not exist");
  const io::SafetensorsContents contents = io::load_safetensors(path);
  const Metadata& meta = contents.metadata;
  const auto kind = meta.find(io::kMetaKind);
  if (kind == meta.end() || kind->second != kTrainingCheckpointKind) {
    throw Error("'" + path.string() + "' is not a ganlite training checkpoint (kind '" +
                (kind == meta.end() ? std::string("none") : kind->second) + "')");
  }
  const auto task_it = meta.find("task");
  if (task_it == meta.end() || task_it->second != task.name()) {
    throw Error("training checkpoint '" + path.string() + "' is for task '" +
                (task_it == meta.end() ? std::string("none") : task_it->second) + "', not '" + task.name() + "'");
  }
  try {
    for (const auto& [name, module] : task.modules()) {
      const std::string prefix = name + ".";
      io::NamedTensors own;
      for (const auto& [key, t] : contents.tensors) {
        if (key.rfind(prefix, 0) == 0) own.emplace_back(key.substr(prefix.size()), t);
      }
      io::load_state_dict(*module, own, /*strict=*/true);
    }
    for (const auto& [name, optimizer] : task.optimizers()) load_adam_state(*optimizer, "opt_" + name, contents.tensors);
    task.load_extra_state(contents.tensors, meta);
  } catch (const Error& e) {
    throw Error("training checkpoint '" + path.string() + "': " + e.what());
  }
  try {
    for (const auto& [key, t] : contents.tensors) {
      if (key == "rng.cpu") set_rng_state(torch::kCPU, t);
      if (key == "rng.cuda" && device.is_cuda()) set_rng_state(device, t);
    }
  } catch (const c10::Error& e) {
    throw Error("training checkpoint '" + path.string() + "': bad RNG state: " + e.what_without_backtrace());
  }
  TrainingProgress progress;
  progress.epoch = parse_int(meta, "epoch", path);
  progress.epoch_iter = parse_int(meta, "epoch_iter", path);
  progress.global_step = parse_int(meta, "global_step", path);
  progress.wall_seconds = parse_double(meta, "wall_seconds", path);
  progress.best_psnr = parse_double(meta, "best_psnr", path);
  progress.best_epoch = parse_int(meta, "best_epoch", path);
  return progress;
}

}  // namespace ganlite::train
