// What a run folder holds when a (train or distill) run starts there, and the clean-up after a
// crash: a SIGKILL can stop a run before its first checkpoint, or in the middle of writing a
// file (leaving a write_file_atomic temporary). The policy (README "Crashes and resume"):
//   - temporaries of a killed run are removed whenever a run starts in the folder;
//   - a folder whose run never saved a checkpoint restarts from step 0 (its logs, samples and
//     exports are discarded), with --resume (the stored config) or a new start (the new one):
//     the result is bit-identical to an uninterrupted run, and no step is logged twice;
//   - a folder with a checkpoint is continued with --resume only; a new start there is refused.
#pragma once
#include <cstdint>
#include <filesystem>

namespace ganlite::train {

enum class RunFolderState {
  kEmpty,            // no run yet (maybe a distill run's student_init.safetensors)
  kUnsaved,          // a run that never saved a checkpoint: config, logs, samples at most
  kCheckpointed,     // checkpoints/latest.ckpt.safetensors exists
  kCheckpointLost,   // latest_net_* exports but no training checkpoint: it was saved once, then removed
};

RunFolderState inspect_run_folder(const std::filesystem::path& run_dir);

// True when a run in `run_dir` saved its training state at least once (kCheckpointed or
// kCheckpointLost): a new run must not start there.
bool run_folder_has_saved_state(const std::filesystem::path& run_dir);

// Checks and cleans `run_dir` for a run about to start; returns true when the run continues from
// its checkpoint, false when it starts from step 0. `resume` asks to continue. Throws
// UsageError for a new start in a folder with saved state, Error for a resume whose checkpoint
// is gone; prints a note to stderr when an unsaved run is discarded.
bool prepare_run_folder(const std::filesystem::path& run_dir, bool resume);

// Removes write_file_atomic temporaries in the run folder, checkpoints/ and samples/.
size_t remove_run_temporaries(const std::filesystem::path& run_dir);
// Removes samples/step_NNNNNN.png past `global_step` (written after the checkpoint a run resumes
// from; the resumed run writes them again).
size_t remove_samples_after(const std::filesystem::path& run_dir, int64_t global_step);

}  // namespace ganlite::train
