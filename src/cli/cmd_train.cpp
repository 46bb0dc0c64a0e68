// `ganlite train`: train a pix2pix or CycleGAN teacher, with exact resume (`--resume RUN_DIR`).
// Config precedence: defaults < --config FILE (or RUN_DIR/config.json on resume) < flags.
#include <torch/torch.h>

#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "command.h"
#include "launch.h"
#include "train_flags.h"
#include "ganlite/train/distributed.h"
#include "ganlite/train/trainer.h"
#include "ganlite/train/validation.h"
#include "ganlite/util/error.h"
#include "ganlite/util/progress.h"

namespace ganlite::cli {
namespace {

namespace fs = std::filesystem;
using train::TrainConfig;

struct TrainCliState {
  std::string config_file;
  std::string resume_dir;
  std::string out;
  bool json = false;
  bool quiet = false;
  bool baselines = false;
  int nproc = 1;
  TrainFlags flags;
};

void run_train(TrainCliState& s) {
  if (run_as_launcher(s.nproc)) return;  // --nproc N: the workers did the run
  if (s.json || s.quiet) ProgressBar::set_enabled(false);
  const bool resume = !s.resume_dir.empty();
  TrainConfig config;
  fs::path run_dir;
  if (resume) {
    require(s.config_file.empty(), "--resume takes the run's own config.json; drop --config");
    require(s.out.empty() || fs::path(s.out) == fs::path(s.resume_dir), "--resume RUN_DIR writes into RUN_DIR; drop --out");
    run_dir = s.resume_dir;
    const fs::path stored = run_dir / "config.json";
    if (!fs::exists(stored)) throw Error("cannot resume: '" + stored.string() + "' does not exist");
    config = TrainConfig::load(stored.string());
  } else {
    require(!s.out.empty(), "--out RUN_DIR is required (or --resume RUN_DIR)");
    run_dir = s.out;
    if (!s.config_file.empty()) config = TrainConfig::load(s.config_file);
  }
  apply_train_flags(s.flags, config, resume);
  config = config.resolved();
  config.validate_config();

  train::TrainerOptions options;
  options.run_dir = run_dir;
  options.resume = resume;
  const auto result = train::train(config, options);

  nlohmann::json summary = train_summary(result, config, run_dir);
  if (s.baselines) {
    std::string why;
    const auto set = train::open_validation_set(config, &why);
    if (!set) throw Error("no baselines: " + why);
    // Under data-parallel training every rank is here: each scores its shard.
    const auto b = train::evaluate_baselines(config, *set, config.val_max_images, train::Distributed::current());
    summary["baselines"] = {{"identity", {{"psnr", b.identity.psnr}, {"ssim", b.identity.ssim}}},
                            {"mean_train_b", {{"psnr", b.mean_train_b.psnr}, {"ssim", b.mean_train_b.ssim}}},
                            {"count", b.identity.count}};
  }
  if (s.json) {
    print_json(summary);
    return;
  }
  print_train_summary(result);
  if (summary.contains("baselines")) std::cout << "baselines " << summary["baselines"].dump() << "\n";
  std::cout << "checkpoint " << result.latest_checkpoint.string() << "\n";
}

void setup_train(CLI::App& app) {
  auto s = std::make_shared<TrainCliState>();
  auto* cmd = app.add_subcommand("train", "Train a pix2pix or CycleGAN teacher (resumable)");
  cmd->add_option("--config", s->config_file, "Start from this config JSON (e.g. RUN_DIR/config.json)");
  cmd->add_option("--resume", s->resume_dir, "Continue the run in RUN_DIR from its latest checkpoint");
  cmd->add_option("--out", s->out, "Run folder (config, logs, samples, checkpoints)");
  cmd->add_flag("--json", s->json, "Print the summary as JSON on stdout (progress bars off)");
  cmd->add_flag("-q,--quiet", s->quiet, "No progress bars");
  cmd->add_flag("--baselines", s->baselines, "Also report the trivial baselines (output = input; = mean train B)");

  add_train_flags(cmd, s->flags);
  add_nproc_flag(cmd, s->nproc);
  cmd->callback([s] { run_train(*s); });
}

}  // namespace

GANLITE_COMMAND("train", 30, setup_train);

}  // namespace ganlite::cli
