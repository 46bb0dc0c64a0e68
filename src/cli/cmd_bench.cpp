// `ganlite bench`: latency of the fast inference path (nn::InferenceRunner) for a generator file
// or an architecture: warm-up, timed runs, median / p90, images/s and achieved GFLOP/s
// (2 x MACs per image / time, MACs by the papers' counting rule).
#include <cmath>
#include <torch/torch.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "command.h"
#include "ganlite/io/checkpoint.h"
#include "ganlite/metrics/latency.h"
#include "ganlite/nn/arch_config.h"
#include "ganlite/nn/inference.h"
#include "ganlite/nn/profiler.h"
#include "ganlite/train/translate.h"
#include "ganlite/util/device.h"
#include "ganlite/util/error.h"
#include "ganlite/util/progress.h"

namespace ganlite::cli {
namespace {

struct BenchOptions {
  CommonOptions common;
  nn::ArchConfig arch;
  std::string model;
  int size = 256;
  int batch_size = 1;
  std::string precision = "fp32";
  int runs = 20;
  int warmup = 3;
  bool eager = false;  // time the plain module forward instead (for comparison)
  bool verbose = false;
};

void run_bench(const BenchOptions& o) {
  apply_common(o.common);
  require(o.runs >= 1, "--runs must be >= 1, got " + std::to_string(o.runs));
  require(o.warmup >= 0, "--warmup must be >= 0, got " + std::to_string(o.warmup));
  require(o.batch_size >= 1, "--batch-size must be >= 1, got " + std::to_string(o.batch_size));
  const torch::Device device = parse_device(o.common.device);
  const nn::Precision precision = nn::parse_precision(o.precision);
  nn::Generator generator;
  if (!o.model.empty()) {
    generator = io::load_generator(o.model, device);
  } else {
    torch::manual_seed(0);
    generator = nn::make_generator(o.arch);
    generator->to(device);
  }
  generator->eval();
  const nn::ArchConfig& arch = generator->config();
  const int64_t multiple = train::size_multiple(arch);
  require(o.size >= multiple && o.size % multiple == 0, "--size " + std::to_string(o.size) + " must be a positive multiple of " +
                                                           std::to_string(multiple) + " for " + arch.arch);
  const int64_t macs = nn::profile_generator(*generator, o.size).macs;

  nn::InferenceRunner runner(*generator, nn::InferenceOptions{precision, true});
  if (o.verbose && !o.common.json) {
    for (const auto& line : runner.describe()) std::cerr << line << "\n";
  }
  if (o.verbose && !o.common.json && !o.eager) {
    const auto probe = torch::rand({o.batch_size, arch.input_nc, o.size, o.size}, torch::TensorOptions().device(device));
    (void)runner.forward(probe);  // warm-up
    for (const auto& [text, ms] : runner.profile_steps(probe)) std::fprintf(stderr, "%9.2f ms  %s\n", ms, text.c_str());
  }
  torch::manual_seed(1);
  const auto input = torch::rand({o.batch_size, arch.input_nc, o.size, o.size}, torch::TensorOptions().device(device)) * 2 - 1;
  ProgressBar bar(o.warmup + o.runs, "bench");
  std::function<void()> once;
  if (o.eager) {
    require(precision == nn::Precision::fp32, "--eager times the module in fp32 only; drop --precision bf16");
    once = [&] {
      c10::InferenceMode guard;
      (void)generator->forward(input);
      bar.advance();
    };
  } else {
    once = [&] {
      (void)runner.forward(input);
      bar.advance();
    };
  }
  metrics::LatencyOptions lat;
  lat.runs = o.runs;
  lat.warmup = o.warmup;
  auto r = metrics::measure_latency(once, device, o.batch_size, lat);
  bar.finish();
  r.size = o.size;
  const double gflops = 2.0 * static_cast<double>(macs) * static_cast<double>(o.batch_size) / (r.median_ms * 1e6);
  const int threads = at::get_num_threads();
  const bool bf16_native = nn::bf16_is_fast(device);
  // bf16's error against the fp32 module on the timed input (outputs in [-1, 1]: peak-to-peak 2).
  double psnr_vs_fp32 = -1;
  if (precision == nn::Precision::bf16 && !o.eager) {
    c10::InferenceMode guard;
    const double mse = (runner.forward(input) - generator->forward(input).to(torch::kFloat)).pow(2).mean().item<double>();
    psnr_vs_fp32 = 10.0 * std::log10(4.0 / std::max(mse, 1e-20));
  }

  if (o.common.json) {
    nlohmann::json j{{"arch", arch.arch},
                     {"config", arch.to_json()},
                     {"size", o.size},
                     {"batch_size", o.batch_size},
                     {"precision", o.precision},
                     {"path", o.eager ? "eager" : "fast"},
                     {"threads", threads},
                     {"device", device.str()},
                     {"macs", macs},
                     {"median_ms", r.median_ms},
                     {"p90_ms", r.p90_ms},
                     {"mean_ms", r.mean_ms},
                     {"min_ms", r.min_ms},
                     {"images_per_s", r.images_per_second},
                     {"gflops", gflops},
                     {"bf16_native", bf16_native},
                     {"runs", o.runs},
                     {"warmup", o.warmup}};
    if (!o.model.empty()) j["model"] = o.model;
    if (psnr_vs_fp32 >= 0) j["psnr_vs_fp32"] = psnr_vs_fp32;
    print_json(j);
    return;
  }
  std::printf("%s%s %s at %dx%d, batch %d, %s, %d thread(s), %s path\n",
              o.model.empty() ? "" : (o.model + ": ").c_str(), arch.arch.c_str(), nn::format_macs(macs).c_str(),
              o.size, o.size, o.batch_size, o.precision.c_str(), threads, o.eager ? "eager" : "fast");
  std::printf("median %.2f ms   p90 %.2f ms   %.2f images/s   %.1f GFLOP/s\n", r.median_ms, r.p90_ms,
              r.images_per_second, gflops);
  if (device.is_cpu()) {
    // Rough conv peaks of this project's reference machine (2 cores, AVX-512 / AMX), for scale.
    const double peak = precision == nn::Precision::bf16 ? 770.0 : 190.0;
    std::printf("(%.0f%% of the ~%.0f GFLOP/s %s conv peak of two AVX-512/AMX cores)\n", 100.0 * gflops / peak, peak,
                o.precision.c_str());
    if (psnr_vs_fp32 >= 0) std::printf("bf16 output vs the fp32 module: PSNR %.1f dB (peak-to-peak 2)\n", psnr_vs_fp32);
    if (precision == nn::Precision::bf16 && !bf16_native) {
      std::printf("note: this CPU has no native bf16 (avx512_bf16 / amx_bf16); bf16 is emulated and slow\n");
    }
  }
}

void setup_bench(CLI::App& app) {
  auto opts = std::make_shared<BenchOptions>();
  auto* cmd = app.add_subcommand("bench", "Time the fast inference path: median / p90 latency, images/s, GFLOP/s");
  cmd->add_option("--model", opts->model, "A generator file (.safetensors); replaces --arch and friends")
      ->check(CLI::ExistingFile);
  add_arch_options(*cmd, opts->arch, "Generator architecture (random weights)");
  cmd->add_option("--size", opts->size, "Square input side in pixels")->capture_default_str();
  cmd->add_option("--batch-size", opts->batch_size, "Images per forward pass")->capture_default_str();
  cmd->add_option("--precision", opts->precision, "Compute precision")
      ->check(one_of(nn::valid_precisions()))
      ->capture_default_str();
  cmd->add_option("--runs", opts->runs, "Timed runs")->capture_default_str();
  cmd->add_option("--warmup", opts->warmup, "Untimed warm-up runs")->capture_default_str();
  cmd->add_flag("--eager", opts->eager, "Time the plain module forward (InferenceMode, NCHW) instead of the fast path");
  cmd->add_flag("--verbose", opts->verbose, "List the fused steps of the inference plan on stderr");
  add_device_options(*cmd, opts->common);
  add_output_options(*cmd, opts->common);
  cmd->callback([opts] { run_bench(*opts); });
}

}  // namespace

GANLITE_COMMAND("bench", 22, setup_bench);

}  // namespace ganlite::cli
