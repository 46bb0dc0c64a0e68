// The best checkpoint of a training run, as the releases keep it: CAT (distillers/
// inception_distiller.py) and GAN Compression (distillers/resnet_distiller.py) evaluate the
// student periodically and save it as the best when its FID is below every earlier FID or, on
// cityscapes, its mIoU above every earlier mIoU. `ganlite select-checkpoint` applies that rule to
// the epoch files a run saved (checkpoints/epoch_NNN_net_G.safetensors, at the release's save
// frequency) and to its final checkpoint; `ganlite reproduce` runs it as a recipe stage.
#pragma once
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace ganlite::report {

struct CheckpointCandidate {
  std::filesystem::path file;
  std::optional<int64_t> epoch;  // nullopt: the run's final checkpoint (latest_net_G)
  std::optional<double> fid;     // set when scored
  std::optional<double> miou;    // set when scored by a segmenter
};

// The run's epoch files of generator `net` in epoch order, then its final checkpoint
// (checkpoints/latest_net_<net>.safetensors). Error naming the folder when there is no final one.
std::vector<CheckpointCandidate> checkpoint_candidates(const std::filesystem::path& run_dir, const std::string& net = "G");

// The releases' rule over candidates in training order: a candidate becomes the best when its FID
// is below every earlier FID or its mIoU above every earlier mIoU (either may be absent). With
// no scores at all: the last candidate (the final checkpoint). Error for an empty list.
size_t select_best_checkpoint(const std::vector<CheckpointCandidate>& candidates);

// "epoch 12" or "final".
std::string checkpoint_label(const CheckpointCandidate& c);

// {file, epoch (null for the final one), fid, miou (null when not scored)}.
nlohmann::json checkpoint_json(const CheckpointCandidate& c);

}  // namespace ganlite::report
