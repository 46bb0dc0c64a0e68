// The training flags `ganlite train` and `ganlite distill` share: each overrides one TrainConfig
// field only when given on the command line (defaults < config file < flags), and only the
// session settings (device, threads, frequencies ...) may change when resuming.
#pragma once
#include <CLI/CLI.hpp>
#include <nlohmann/json_fwd.hpp>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "ganlite/train/train_config.h"
#include "ganlite/train/trainer.h"

namespace ganlite::cli {

struct TrainFlagOverride {
  CLI::Option* option;
  std::function<void(train::TrainConfig&)> apply;
  bool allowed_on_resume;
};

struct TrainFlags {
  std::vector<TrainFlagOverride> overrides;
};

struct TrainFlagGroups {
  bool generator = true;    // --arch --ngf --n-blocks ... (distill reads the student's from its file)
  bool task_losses = true;  // --lambda-L1 --lambda-A --lambda-B --lambda-identity --pool-size
};

// Declares the TrainConfig flags (--task, --data, D, schedule, data, seed, device, frequencies).
void add_train_flags(CLI::App* cmd, TrainFlags& flags, const TrainFlagGroups& groups = {});
// Applies the flags given; on resume a flag not allowed there throws UsageError naming it.
void apply_train_flags(const TrainFlags& flags, train::TrainConfig& config, bool resume);
// True when the flag named `name` (e.g. "--ndf") was given.
bool train_flag_given(const TrainFlags& flags, const std::string& name);

// The run's summary (iterations, losses, checkpoint, best PSNR) as printed by --json.
nlohmann::json train_summary(const train::TrainResult& result, const train::TrainConfig& config,
                             const std::filesystem::path& run_dir);
// The same summary as text on stdout.
void print_train_summary(const train::TrainResult& result);

}  // namespace ganlite::cli
