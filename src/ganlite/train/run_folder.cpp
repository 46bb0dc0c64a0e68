#include "ganlite/train/run_folder.h"

#include <iostream>
#include <string>
#include <vector>

#include "ganlite/train/trainer.h"
#include "ganlite/util/atomic_file.h"
#include "ganlite/util/error.h"
#include "ganlite/util/tensorboard.h"

namespace ganlite::train {

namespace fs = std::filesystem;

namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The generator / discriminator files the Trainer exports: TAG_net_NAME.safetensors.
std::vector<fs::path> exported_networks(const fs::path& run_dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  const fs::path dir = run_dir / "checkpoints";
  if (!fs::is_directory(dir, ec)) return files;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!starts_with(name, ".") && name.find("_net_") != std::string::npos && ends_with(name, ".safetensors")) {
      files.push_back(entry.path());
    }
  }
  return files;
}

// The step of a sample grid file ("step_000500.png"), or -1.
int64_t sample_step(const std::string& name) {
  const std::string prefix = "step_", suffix = ".png";
  if (!starts_with(name, prefix) || !ends_with(name, suffix)) return -1;
  const std::string digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  if (digits.empty() || digits.size() > 18 || digits.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stoll(digits);
}

void remove_file(const fs::path& path) {
  std::error_code ec;
  fs::remove(path, ec);
  if (ec) throw Error("cannot remove '" + path.string() + "': " + ec.message());
}

// Everything a run that never saved a checkpoint wrote, but its config and a distill run's
// student_init.safetensors (its config points at that file).
void discard_unsaved_run(const fs::path& run_dir) {
  remove_file(run_dir / "metrics.jsonl");
  remove_file(run_dir / "val.jsonl");
  remove_samples_after(run_dir, 0);
  remove_event_files(run_dir);
  for (const auto& file : exported_networks(run_dir)) remove_file(file);
}

}  // namespace

RunFolderState inspect_run_folder(const fs::path& run_dir) {
  std::error_code ec;
  if (fs::exists(latest_checkpoint_path(run_dir), ec)) return RunFolderState::kCheckpointed;
  const auto exports = exported_networks(run_dir);
  for (const auto& file : exports) {
    if (starts_with(file.filename().string(), "latest_net_")) return RunFolderState::kCheckpointLost;
  }
  for (const char* name : {"config.json", "metrics.jsonl", "val.jsonl", "samples"}) {
    if (fs::exists(run_dir / name, ec)) return RunFolderState::kUnsaved;
  }
  return exports.empty() ? RunFolderState::kEmpty : RunFolderState::kUnsaved;
}

bool run_folder_has_saved_state(const fs::path& run_dir) {
  const auto state = inspect_run_folder(run_dir);
  return state == RunFolderState::kCheckpointed || state == RunFolderState::kCheckpointLost;
}

bool prepare_run_folder(const fs::path& run_dir, bool resume) {
  const auto state = inspect_run_folder(run_dir);
  const fs::path latest = latest_checkpoint_path(run_dir);
  if (!resume && (state == RunFolderState::kCheckpointed || state == RunFolderState::kCheckpointLost)) {
    throw UsageError("run folder '" + run_dir.string() + "' already holds a run (" +
                     (state == RunFolderState::kCheckpointed ? latest.string() : "its exported networks") +
                     "); continue it with --resume or choose another --out");
  }
  if (resume && state == RunFolderState::kCheckpointLost) {
    throw Error("training checkpoint '" + latest.string() +
                "' does not exist: the run saved one (its networks are exported beside it) and it was removed, "
                "so the run cannot continue; start a new run in another folder");
  }
  if (resume && state == RunFolderState::kEmpty) {
    throw Error("training checkpoint '" + latest.string() + "' does not exist: there is no run to resume in '" +
                run_dir.string() + "'");
  }
  remove_run_temporaries(run_dir);
  if (state == RunFolderState::kUnsaved) {
    std::cerr << "note: '" << run_dir.string() << "' holds a run stopped before its first checkpoint; it starts "
              << "again from step 0 (its logs and samples are replaced)\n";
    discard_unsaved_run(run_dir);
  }
  return state == RunFolderState::kCheckpointed;
}

size_t remove_run_temporaries(const fs::path& run_dir) {
  return remove_stale_temporaries(run_dir) + remove_stale_temporaries(run_dir / "checkpoints") +
         remove_stale_temporaries(run_dir / "samples");
}

size_t remove_samples_after(const fs::path& run_dir, int64_t global_step) {
  std::error_code ec;
  const fs::path dir = run_dir / "samples";
  if (!fs::is_directory(dir, ec)) return 0;
  std::vector<fs::path> later;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (sample_step(entry.path().filename().string()) > global_step) later.push_back(entry.path());
  }
  for (const auto& path : later) remove_file(path);
  return later.size();
}

}  // namespace ganlite::train
