// `ganlite prune`: CAT's one-step pruning of a teacher to a MAC budget (methods.md 3.1).
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <nlohmann/json.hpp>

#include "command.h"
#include "ganlite/compress/latency_budget.h"
#include "ganlite/compress/prune.h"
#include "ganlite/io/checkpoint.h"
#include "ganlite/nn/generator_family.h"
#include "ganlite/metrics/conv_peak.h"
#include "ganlite/metrics/latency.h"
#include "ganlite/nn/inference.h"
#include "ganlite/nn/profiler.h"
#include "ganlite/util/device.h"
#include "ganlite/util/error.h"

namespace ganlite::cli {
namespace {

struct PruneCommandOptions {
  CommonOptions common;
  std::string teacher;
  std::string target_macs;
  std::string target_latency;  // issue 19: a budget in ms, measured here
  std::string precision = "fp32";
  bool no_cache = false;
  std::string lane_width;  // auto | off | N; empty: auto with --target-latency, off with --target-macs
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

// The student's latency through the fast path at input_size, as `ganlite bench` times it.
double measure_student_ms(nn::GeneratorImpl& student, int64_t size, nn::Precision precision) {
  const nn::InferenceRunner runner(student, nn::InferenceOptions{precision, true});
  const auto input = torch::rand({1, student.config().input_nc, size, size}) * 2 - 1;
  metrics::LatencyOptions lat;
  lat.warmup = 3;
  lat.runs = 10;
  return metrics::measure_latency([&] { (void)runner.forward(input); }, torch::kCPU, 1, lat).median_ms;
}

// --lane-width: auto (the ISA's, metrics::conv_lane_width), off (0), or a count.
int parse_lane_width(const std::string& text) {
  if (text.empty() || text == "auto") return metrics::conv_lane_width();
  if (text == "off") return 0;
  try {
    size_t used = 0;
    const int n = std::stoi(text, &used);
    if (used == text.size() && n >= 2 && n <= 256) return n;
  } catch (const std::exception&) {
  }
  throw UsageError("--lane-width: '" + text + "' is not auto, off or a count in [2, 256]");
}

// --target-latency: the per-layer table search, confirmed by timing (compress/latency_budget.h).
compress::LatencyBudgetResult prune_to_latency(const PruneCommandOptions& opts, const nn::GeneratorImpl& teacher,
                                               const compress::PruneOptions& prune,
                                               std::filesystem::path& table_cache, int& shapes_timed) {
  const nn::Precision precision = nn::parse_precision(opts.precision);
  compress::LatencyBudgetOptions options;
  options.target_ms = compress::parse_latency_ms(opts.target_latency);
  options.prune = prune;
  options.lane_width = parse_lane_width(opts.lane_width);
  table_cache = opts.no_cache ? std::filesystem::path() : compress::default_latency_table_cache();
  compress::MeasuredLatencyTable table(compress::current_latency_table_key(opts.precision, opts.input_size),
                                       table_cache);
  if (!opts.common.json && !opts.common.quiet) {
    std::cerr << "pruning to " << options.target_ms << " ms at " << opts.input_size << "x" << opts.input_size << ", "
              << opts.precision << ", " << at::get_num_threads() << " thread(s): timing conv shapes and students"
              << std::endl;
  }
  auto result = compress::prune_to_latency_budget(
      teacher, options, table, [&](nn::GeneratorImpl& s) { return measure_student_ms(s, opts.input_size, precision); });
  table.save();
  shapes_timed = table.measured();
  return result;
}

nlohmann::json latency_json(const compress::LatencyBudgetResult& r, const PruneCommandOptions& opts,
                            const std::filesystem::path& cache, int shapes_timed) {
  auto round_json = [](const compress::LatencyRound& x) -> nlohmann::json {
    return {{"threshold", x.threshold}, {"predicted_ms", x.predicted_ms}, {"measured_ms", x.measured_ms},
            {"macs", x.macs}, {"calibration", x.calibration}};
  };
  nlohmann::json rounds = nlohmann::json::array();
  for (const auto& x : r.rounds) rounds.push_back(round_json(x));
  // Each family's best student (exact widths, lane-rounded ones), for comparison.
  nlohmann::json families = nlohmann::json::object();
  for (const auto& [name, best] : r.families) families[name] = round_json(best);
  return {{"target_ms", r.target_ms},       {"predicted_ms", r.predicted_ms},
          {"measured_ms", r.measured_ms},   {"table_ms", r.table_ms},
          {"met", r.met},                   {"fraction_of_budget", r.measured_ms / r.target_ms},
          {"precision", opts.precision},    {"threads", at::get_num_threads()},
          {"rounds", rounds},               {"table_cache", cache.string()},
          {"shapes_timed", shapes_timed},   {"lane_width", r.lane_width},
          {"rounding", r.rounding},         {"families", families}};
}

void print_latency_lines(const compress::LatencyBudgetResult& r) {
  std::printf("latency   %.2f ms measured (%.0f%% of the %.2f ms budget%s), %.2f ms predicted, %zu student(s) timed\n",
              r.measured_ms, 100.0 * r.measured_ms / r.target_ms, r.target_ms,
              r.met ? "" : "; outside 90-100%: the widths cannot land closer, or the machine is busy",
              r.predicted_ms, r.rounds.size());
  for (const auto& [name, best] : r.families) {
    std::printf("widths    %-7s %s: %.2f ms measured, %s MACs\n", name.c_str(),
                name == r.rounding ? "(kept)" : "      ", best.measured_ms, nn::format_macs(best.macs).c_str());
  }
}

void run_prune(const PruneCommandOptions& opts) {
  apply_common(opts.common);
  const torch::Device device = parse_device(opts.common.device);
  require(!(opts.inherit && opts.reinit), "--inherit-weights and --reinit exclude each other");
  compress::PruneOptions options;
  require(opts.target_macs.empty() != opts.target_latency.empty(),
          "give exactly one of --target-macs and --target-latency");
  require(!opts.common.device.empty() && (opts.target_latency.empty() || opts.common.device == "cpu"),
          "--target-latency times the student on the CPU: use --device cpu");
  // A bad value fails before any work. With --target-macs, a lane width (none by default: CAT's
  // exact counts) rounds every kept count to its nearer multiple inside the MAC search.
  const int lanes = opts.lane_width.empty() ? 0 : parse_lane_width(opts.lane_width);
  if (opts.target_latency.empty()) options.rounding = {lanes, true};
  if (!opts.target_macs.empty()) options.target_macs = parse_si_count(opts.target_macs);
  options.input_size = opts.input_size;
  options.min_channels = opts.min_channels;
  options.inherit_weights = !opts.reinit;
  require(opts.min_channels >= 1, "--min-channels must be >= 1");

  auto teacher = io::load_generator(opts.teacher, device);
  teacher->eval();
  std::optional<compress::LatencyBudgetResult> latency;
  std::filesystem::path table_cache;
  int shapes_timed = 0;
  if (!opts.target_latency.empty()) {
    latency = prune_to_latency(opts, *teacher, options, table_cache, shapes_timed);
    options.target_macs = static_cast<double>(latency->prune.macs_after);
  }
  const auto result = latency ? std::move(latency->prune) : compress::prune_to_mac_budget(*teacher, options);
  io::save_generator(opts.out, *result.student,
                     {{"pruned_from", opts.teacher},
                      {"prune_threshold", std::to_string(result.threshold)},
                      {latency ? "prune_target_latency_ms" : "prune_target_macs",
                       latency ? std::to_string(latency->target_ms)
                               : std::to_string(static_cast<int64_t>(options.target_macs))},
                      {"prune_weights", result.inherited ? "inherited" : "reinitialised"}});

  const auto& w = result.config.widths;
  // Families that count their budget at their training resolution (GauGAN's 256x512) say it.
  const auto& family = nn::generator_family(result.config.arch);
  const auto budget_size = family.prune.macs && family.default_profile_size
                               ? family.default_profile_size(result.config)
                               : std::pair<int64_t, int64_t>{opts.input_size, opts.input_size};
  if (opts.common.json) {
    nlohmann::json j{{"teacher", opts.teacher},
                {"out", opts.out},
                {"target_macs", static_cast<int64_t>(options.target_macs)},
                // the budget's size, as `profile` prints it: S when square, else [H, W]
                {"input_size", budget_size.first == budget_size.second
                                   ? nlohmann::json(budget_size.first)
                                   : nlohmann::json({budget_size.first, budget_size.second})},
                {"threshold", result.threshold},
                {"macs_before", result.macs_before},
                {"macs_after", result.macs_after},
                {"search_macs", result.search_macs},  // as CAT's search counts (BatchNorm left out)
                {"params_before", result.params_before},
                {"params_after", result.params_after},
                {"search_steps", result.search_steps},
                {"seconds", result.seconds},
                {"weights", result.inherited ? "inherited" : "reinitialised"},
                {"widths", result.config.to_json()["widths"]},
                {"lane_width", options.rounding.multiple},  // --target-macs: 0 unless asked
                {"config", result.config.to_json()}};
    if (latency) {
      j["target_macs"] = nullptr;  // the budget was a latency
      j["latency"] = latency_json(*latency, opts, table_cache, shapes_timed);
    }
    print_json(j);
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
  const std::string budget = latency ? "latency budget" : "budget " + nn::format_macs(static_cast<int64_t>(options.target_macs));
  std::printf("MACs      %s -> %s (%s, %.1fx fewer) at %dx%d\n", nn::format_macs(result.macs_before).c_str(),
              nn::format_macs(result.macs_after).c_str(), budget.c_str(),
              static_cast<double>(result.macs_before) / static_cast<double>(std::max<int64_t>(1, result.macs_after)),
              static_cast<int>(budget_size.first), static_cast<int>(budget_size.second));
  if (result.search_macs != result.macs_after) {
    std::printf("          %s as CAT's search counts them (BatchNorm left out), which the budget bounds\n",
                nn::format_macs(result.search_macs).c_str());
  }
  if (latency) print_latency_lines(*latency);
  std::printf("params    %s -> %s\n", nn::format_params(result.params_before).c_str(),
              nn::format_params(result.params_after).c_str());
  std::printf("weights   %s\nwrote     %s\n", result.inherited ? "inherited from the teacher" : "re-initialised",
              opts.out.c_str());
}

void setup_prune(CLI::App& app) {
  auto opts = std::make_shared<PruneCommandOptions>();
  auto* cmd = app.add_subcommand("prune", "Prune a teacher in one step to a MAC budget (CAT)");
  cmd->add_option("--teacher", opts->teacher, "Teacher generator file (.safetensors)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--target-macs", opts->target_macs, "MAC budget, e.g. 2.6G, 500M");
  cmd->add_option("--target-latency", opts->target_latency,
                  "Latency budget measured on this machine through the fast path, e.g. 30ms (instead of --target-macs)");
  cmd->add_option("--precision", opts->precision, "With --target-latency: the precision the student is timed in")
      ->check(one_of(nn::valid_precisions()))
      ->capture_default_str();
  cmd->add_flag("--no-cache", opts->no_cache,
                "With --target-latency: time every conv shape afresh, without reading or writing the latency table "
                "cache ($XDG_CACHE_HOME/ganlite/latency_table.json)");
  cmd->add_option("--lane-width", opts->lane_width,
                  "Channel counts the kernels use fully (auto: the ISA's channel block, 16 with AVX-512, 8 with "
                  "AVX2; off; or a count). With --target-latency (default auto): also search widths rounded up "
                  "and to the nearer multiple, kept when they meet the budget with more MACs. With --target-macs "
                  "(default off, CAT's exact counts): every kept count rounded to the nearer multiple");
  cmd->add_option("--out", opts->out, "Student generator file to write")->required();
  cmd->add_option("--input-size", opts->input_size, "Square input side the budget is counted at (label-map generators: their training resolution instead)")->capture_default_str();
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
