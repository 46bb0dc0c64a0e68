#include "ganlite/report/checkpoint_select.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <regex>

#include "ganlite/util/error.h"

namespace ganlite::report {

namespace fs = std::filesystem;

std::vector<CheckpointCandidate> checkpoint_candidates(const fs::path& run_dir, const std::string& net) {
  const fs::path dir = run_dir / "checkpoints";
  const fs::path final_file = dir / ("latest_net_" + net + ".safetensors");
  if (!fs::is_regular_file(final_file)) {
    throw Error("run folder '" + run_dir.string() + "' has no " + final_file.filename().string() +
                " in checkpoints/ (is it a finished ganlite train / distill run?)");
  }
  // The trainer's epoch tags: epoch_%03d (train/trainer.cpp), so at least three digits.
  const std::regex pattern("epoch_([0-9]+)_net_" + net + "\\.safetensors");
  std::vector<CheckpointCandidate> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::smatch m;
    const std::string name = entry.path().filename().string();
    if (entry.is_regular_file() && std::regex_match(name, m, pattern)) {
      out.push_back({entry.path(), std::stoll(m[1].str()), std::nullopt, std::nullopt});
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return *a.epoch < *b.epoch; });
  out.push_back({final_file, std::nullopt, std::nullopt, std::nullopt});
  return out;
}

size_t select_best_checkpoint(const std::vector<CheckpointCandidate>& candidates) {
  if (candidates.empty()) throw Error("no checkpoint to choose from");
  // Strict comparisons, as the releases' `fid < self.best_fid` / `mIoU > self.best_mIoU`.
  std::optional<double> best_fid, best_miou;
  std::optional<size_t> best;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const auto& c = candidates[i];
    bool is_best = false;
    if (c.fid && (!best_fid || *c.fid < *best_fid)) {
      best_fid = c.fid;
      is_best = true;
    }
    if (c.miou && (!best_miou || *c.miou > *best_miou)) {
      best_miou = c.miou;
      is_best = true;
    }
    if (is_best) best = i;
  }
  return best.value_or(candidates.size() - 1);
}

std::string checkpoint_label(const CheckpointCandidate& c) {
  return c.epoch ? "epoch " + std::to_string(*c.epoch) : "final";
}

nlohmann::json checkpoint_json(const CheckpointCandidate& c) {
  using json = nlohmann::json;
  return {{"file", c.file.string()},
          {"epoch", c.epoch ? json(*c.epoch) : json(nullptr)},
          {"label", checkpoint_label(c)},
          {"fid", c.fid ? json(*c.fid) : json(nullptr)},
          {"miou", c.miou ? json(*c.miou) : json(nullptr)}};
}

}  // namespace ganlite::report
