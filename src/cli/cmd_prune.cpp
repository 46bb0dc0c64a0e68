// `ganlite prune`: CAT's one-step pruning of a teacher to a MAC budget (methods.md 3.1).
#include <torch/torch.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "command.h"
#include "ganlite/compress/prune.h"
#include "ganlite/io/checkpoint.h"
#include "ganlite/nn/profiler.h"
#include "ganlite/util/device.h"
#include "ganlite/util/error.h"

namespace ganlite::cli {
namespace {

struct PruneCommandOptions {
  CommonOptions common;
  std::string teacher;
  std::string target_macs;
  std::string out;
  int input_size = 256;
  int min_channels = 16;
  bool inherit = false;
  bool reinit = false;
};

std::string widths_line(const nn::GeneratorWidths& w) {
  std::string s = "stem " + std::to_string(w.stem) + ", down1 " + std::to_string(w.down1) + ", trunk " +
                  std::to_string(w.trunk) + ", up1 " + std::to_string(w.up1) + ", up2 " + std::to_string(w.up2);
  return s;
}

void run_prune(const PruneCommandOptions& opts) {
  apply_common(opts.common);
  const torch::Device device = parse_device(opts.common.device);
  require(!(opts.inherit && opts.reinit), "--inherit-weights and --reinit exclude each other");
  compress::PruneOptions options;
  options.target_macs = parse_si_count(opts.target_macs);
  options.input_size = opts.input_size;
  options.min_channels = opts.min_channels;
  options.inherit_weights = !opts.reinit;
  require(opts.min_channels >= 1, "--min-channels must be >= 1");

  auto teacher = io::load_generator(opts.teacher, device);
  teacher->eval();
  const auto result = compress::prune_to_mac_budget(*teacher, options);
  io::save_generator(opts.out, *result.student,
                     {{"pruned_from", opts.teacher},
                      {"prune_threshold", std::to_string(result.threshold)},
                      {"prune_target_macs", std::to_string(static_cast<int64_t>(options.target_macs))},
                      {"prune_weights", options.inherit_weights ? "inherited" : "reinitialised"}});

  const auto& w = result.config.widths;
  if (opts.common.json) {
    print_json({{"teacher", opts.teacher},
                {"out", opts.out},
                {"target_macs", static_cast<int64_t>(options.target_macs)},
                {"input_size", opts.input_size},
                {"threshold", result.threshold},
                {"macs_before", result.macs_before},
                {"macs_after", result.macs_after},
                {"search_macs", result.search_macs},  // as CAT's search counts (BatchNorm left out)
                {"params_before", result.params_before},
                {"params_after", result.params_after},
                {"search_steps", result.search_steps},
                {"seconds", result.seconds},
                {"weights", options.inherit_weights ? "inherited" : "reinitialised"},
                {"widths", result.config.to_json()["widths"]},
                {"config", result.config.to_json()}});
    return;
  }
  std::printf("teacher   %s (%s ngf %d)\n", opts.teacher.c_str(), teacher->config().arch.c_str(), teacher->config().ngf);
  std::printf("threshold %.6g (|gamma| above it survives), %d search steps, %.2f s\n", result.threshold,
              result.search_steps, result.seconds);
  std::printf("widths    %s\n", widths_line(w).c_str());
  for (size_t b = 0; b < w.blocks.size(); ++b) {
    std::string line;
    for (int x : w.blocks[b]) line += (line.empty() ? "" : " ") + std::to_string(x);
    std::printf("  block %zu: %s%s\n", b, line.c_str(),
                std::all_of(w.blocks[b].begin(), w.blocks[b].end(), [](int x) { return x == 0; }) ? " (identity)"
                                                                                                     : "");
  }
  std::printf("MACs      %s -> %s (budget %s, %.1fx fewer) at %dx%d\n", nn::format_macs(result.macs_before).c_str(),
              nn::format_macs(result.macs_after).c_str(), nn::format_macs(static_cast<int64_t>(options.target_macs)).c_str(),
              static_cast<double>(result.macs_before) / static_cast<double>(std::max<int64_t>(1, result.macs_after)),
              opts.input_size, opts.input_size);
  if (result.search_macs != result.macs_after) {
    std::printf("          %s as CAT's search counts them (BatchNorm left out), which the budget bounds\n",
                nn::format_macs(result.search_macs).c_str());
  }
  std::printf("params    %s -> %s\n", nn::format_params(result.params_before).c_str(),
              nn::format_params(result.params_after).c_str());
  std::printf("weights   %s\nwrote     %s\n", options.inherit_weights ? "inherited from the teacher" : "re-initialised",
              opts.out.c_str());
}

void setup_prune(CLI::App& app) {
  auto opts = std::make_shared<PruneCommandOptions>();
  auto* cmd = app.add_subcommand("prune", "Prune a teacher in one step to a MAC budget (CAT)");
  cmd->add_option("--teacher", opts->teacher, "Teacher generator file (.safetensors)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--target-macs", opts->target_macs, "MAC budget, e.g. 2.6G, 500M")->required();
  cmd->add_option("--out", opts->out, "Student generator file to write")->required();
  cmd->add_option("--input-size", opts->input_size, "Square input side the budget is counted at")->capture_default_str();
  cmd->add_option("--min-channels", opts->min_channels, "Channels kept at least in stem, down and up layers")
      ->capture_default_str();
  cmd->add_flag("--inherit-weights", opts->inherit, "Copy the teacher's surviving weights (default)");
  cmd->add_flag("--reinit", opts->reinit, "Keep only the architecture; initialise the weights afresh");
  add_device_options(*cmd, opts->common);
  add_output_options(*cmd, opts->common);
  cmd->callback([opts] { run_prune(*opts); });
}

}  // namespace

GANLITE_COMMAND("prune", 50, setup_prune);

}  // namespace ganlite::cli
