// `ganlite make-dataset`: writes a synthetic dataset in a public folder layout.
#include <iostream>
#include <nlohmann/json.hpp>

#include "command.h"
#include "ganlite/data/synthetic.h"
#include "ganlite/util/progress.h"

namespace ganlite::cli {
namespace {

struct MakeDatasetArgs {
  data::SyntheticOptions synth;
  std::string out;
  CommonOptions common;
};

void setup_make_dataset(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "make-dataset",
      "Write a synthetic dataset (edges2shapes: paired like edges2shoes; shapes2stripes: unpaired like "
      "horse2zebra, with testA_truth/; labels2scenes: paired like cityscapes, with class-id label maps)");
  auto args = std::make_shared<MakeDatasetArgs>();
  cmd->add_option("--kind", args->synth.kind, "Dataset kind")
      ->required()
      ->check(one_of(data::synthetic_kinds()));
  cmd->add_option("--count", args->synth.count, "Training images (per domain for shapes2stripes)")->required();
  cmd->add_option("--test-count", args->synth.test_count, "Test images (default: count/4, at least 1)");
  cmd->add_option("--size", args->synth.size, "Image side in pixels")->capture_default_str();
  cmd->add_option("--seed", args->synth.seed, "Random seed; the same seed gives identical files")->capture_default_str();
  cmd->add_option("--out", args->out, "Output folder (created; must be empty unless --force)")->required();
  cmd->add_flag("--force", args->synth.force, "Replace a non-empty output folder");
  cmd->add_option("--threads", args->common.threads, "Generation threads (0 = one per core)")->capture_default_str();
  add_output_options(*cmd, args->common);
  cmd->callback([args] {
    if (args->common.json || args->common.quiet) ProgressBar::set_enabled(false);
    args->synth.threads = args->common.threads;
    std::unique_ptr<ProgressBar> bar;
    const auto summary = data::make_synthetic_dataset(args->out, args->synth, [&](int64_t done, int64_t total) {
      if (!bar) bar = std::make_unique<ProgressBar>(total, "make-dataset " + args->synth.kind);
      bar->update(done);
    });
    if (bar) bar->finish();
    const double rate = summary.seconds > 0 ? static_cast<double>(summary.files_written) / summary.seconds : 0.0;
    if (args->common.json) {
      print_json({{"out", args->out},
                  {"kind", summary.kind},
                  {"size", summary.size},
                  {"train_count", summary.train_count},
                  {"test_count", summary.test_count},
                  {"seed", summary.seed},
                  {"files", summary.files_written},
                  {"seconds", summary.seconds},
                  {"images_per_second", rate}});
      return;
    }
    std::cout << "wrote " << summary.kind << " to " << args->out << ": " << summary.train_count << " train, "
              << summary.test_count << " test, " << summary.files_written << " files in "
              << format_duration(summary.seconds) << " (" << static_cast<int64_t>(rate) << " images/s)\n";
  });
}

}  // namespace

GANLITE_COMMAND("make-dataset", 10, setup_make_dataset);

}  // namespace ganlite::cli
