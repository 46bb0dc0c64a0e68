// `ganlite bench`: latency of the fast inference path (nn::InferenceRunner) for a generator file
// or an architecture: warm-up, timed runs, median / p90, images/s and achieved GFLOP/s
// (2 x MACs per image / time, MACs by the papers' counting rule), on a CPU also as a fraction of
// the conv peak measured on this machine (metrics/conv_peak.h, cached per CPU model and threads).
#include <cmath>
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <filesystem>
#include <iostream>
#include <optional>
#include <nlohmann/json.hpp>

#include "command.h"
#include "ganlite/io/checkpoint.h"
#include "ganlite/io/onnx_runner.h"
#include "ganlite/metrics/conv_peak.h"
#include "ganlite/metrics/latency.h"
#include "ganlite/nn/arch_config.h"
#include "ganlite/nn/inference.h"
#include "ganlite/nn/profiler.h"
#include "ganlite/nn/translate.h"
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
  std::string kernels = "auto";
  int runs = 20;
  int warmup = 3;
  bool eager = false;  // time the plain module forward instead (for comparison)
  std::string onnx;    // time OpenCV DNN on this export of the model instead (issue 19)
  bool verbose = false;
  bool no_cache = false;   // measure the conv peak without reading or writing the cache
  bool remeasure = false;  // measure the conv peak again and replace the cached figure
};

// The measured conv peak of this CPU (cached unless --no-cache); nullopt off the CPU.
std::optional<metrics::ConvPeakLookup> cpu_conv_peak(const BenchOptions& o, const torch::Device& device,
                                                     std::filesystem::path& cache) {
  if (!device.is_cpu()) return std::nullopt;
  cache = o.no_cache ? std::filesystem::path() : metrics::default_conv_peak_cache();
  const bool measuring =
      o.remeasure || cache.empty() || !metrics::read_cached_conv_peak(cache, metrics::current_conv_peak_key());
  if (measuring && !o.common.json && !o.common.quiet) {
    std::cerr << "measuring the conv peak of this CPU (fp32" << (metrics::native_bf16_convs() ? ", bf16" : "")
              << "; a fraction of a second each)" << std::endl;
  }
  return metrics::conv_peak(cache, o.remeasure);
}

// The peak of the precision timed; nullopt for bf16 without native support.
std::optional<double> peak_for(const metrics::ConvPeak& peak, nn::Precision precision) {
  return precision == nn::Precision::bf16 ? peak.bf16_gflops : std::optional<double>(peak.fp32_gflops);
}

// The CPU, its measured peaks, and the achieved GFLOP/s as a fraction of the peak of the
// precision timed (or why there is none).
void print_peak_lines(const metrics::ConvPeakLookup& lookup, const std::filesystem::path& cache, double gflops,
                      nn::Precision precision) {
  const auto& p = lookup.peak;
  std::printf("CPU: %s; conv peak measured on it with %d thread(s): fp32 %.0f GFLOP/s, bf16 ", p.key.cpu_model.c_str(),
              p.key.threads, p.fp32_gflops);
  if (p.bf16_gflops) {
    std::printf("%.0f GFLOP/s\n", *p.bf16_gflops);
  } else {
    std::printf("unavailable (no native bf16: avx512_bf16 / AMX, or a oneDNN ISA limit)\n");
  }
  if (lookup.from_cache) std::printf("(peak cached in %s; --remeasure measures again)\n", cache.c_str());
  if (const auto peak = peak_for(p, precision)) {
    std::printf("%.0f%% of the measured %s conv peak\n", 100.0 * gflops / *peak,
                precision == nn::Precision::bf16 ? "bf16" : "fp32");
  } else {
    std::printf("no bf16 conv peak to compare with: bf16 is emulated here, and slow\n");
  }
}

// How libgomp's threads wait between parallel regions in this process (src/cli/openmp_wait.cpp).
std::string openmp_spin_policy() {
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  const char* spin = std::getenv("GOMP_SPINCOUNT");
  if (std::getenv("GANLITE_SET_GOMP_SPINCOUNT") != nullptr && spin != nullptr) {
    return std::string("GOMP_SPINCOUNT=") + spin + " (ganlite's bounded spin)";
  }
  if (policy != nullptr) return std::string("OMP_WAIT_POLICY=") + policy + " (user)";
  if (spin != nullptr) return std::string("GOMP_SPINCOUNT=") + spin + " (user)";
  return "libgomp default (300000 spins)";
}

void run_bench(const BenchOptions& o) {
  apply_common(o.common);
  require(o.runs >= 1, "--runs must be >= 1, got " + std::to_string(o.runs));
  require(o.warmup >= 0, "--warmup must be >= 0, got " + std::to_string(o.warmup));
  require(o.batch_size >= 1, "--batch-size must be >= 1, got " + std::to_string(o.batch_size));
  const torch::Device device = parse_device(o.common.device);
  const nn::Precision precision = nn::parse_precision(o.precision);
  // The same probe the inference runner refuses by (nn::bf16_convs_run), asked before a model is
  // loaded; the message names the ISA limit, the usual reason.
  if (precision == nn::Precision::bf16 && !nn::bf16_convs_run(device)) {
    const std::string limit = metrics::onednn_isa_limit();
    throw UsageError("--precision bf16: oneDNN cannot run bf16 convolutions here" +
                     (limit.empty() ? std::string() : " under the ISA limit '" + limit + "' (ONEDNN_MAX_CPU_ISA / DNNL_MAX_CPU_ISA below AVX512_CORE)") +
                     "; use fp32");
  }
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
  const int64_t multiple = nn::size_multiple(arch);
  require(o.size >= multiple && o.size % multiple == 0, "--size " + std::to_string(o.size) + " must be a positive multiple of " +
                                                           std::to_string(multiple) + " for " + arch.arch);
  const int64_t macs = nn::profile_generator(*generator, o.size).macs;

  nn::InferenceRunner runner(*generator, nn::InferenceOptions{precision, true, nn::parse_conv_kernels(o.kernels)});
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
  std::unique_ptr<io::OnnxRunner> onnx;
  if (!o.onnx.empty()) {
    require(!o.eager, "--onnx and --eager exclude each other");
    require(precision == nn::Precision::fp32, "--onnx times OpenCV DNN in fp32 only; drop --precision bf16");
    onnx = std::make_unique<io::OnnxRunner>(o.onnx);
    once = [&] {
      (void)onnx->run(input);
      bar.advance();
    };
  } else if (o.eager) {
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
  const bool bf16_native = device.is_cpu() ? metrics::native_bf16_convs() : nn::bf16_is_fast(device);
  std::filesystem::path peak_cache;
  const auto peak = cpu_conv_peak(o, device, peak_cache);
  // bf16's error against the fp32 module on the timed input (outputs in [-1, 1]: peak-to-peak 2).
  double psnr_vs_fp32 = -1;
  if (precision == nn::Precision::bf16 && !o.eager) {
    c10::InferenceMode guard;
    const double mse = (runner.forward(input) - generator->forward(input).to(torch::kFloat)).pow(2).mean().item<double>();
    psnr_vs_fp32 = 10.0 * std::log10(4.0 / std::max(mse, 1e-20));
  }

  const std::string path_name = onnx ? "opencv-dnn" : o.eager ? "eager" : "fast";
  if (o.common.json) {
    nlohmann::json j{{"arch", arch.arch},
                     {"config", arch.to_json()},
                     {"size", o.size},
                     {"batch_size", o.batch_size},
                     {"precision", o.precision},
                     {"kernels", o.kernels},
                     {"path", path_name},
                     {"openmp_spin", openmp_spin_policy()},
                     {"threads", threads},
                     {"device", device.str()},
                     {"cpu_model", metrics::cpu_model_name()},
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
    if (peak) {
      const auto& p = peak->peak;
      const auto of = peak_for(p, precision);
      j["peak_fp32_gflops"] = p.fp32_gflops;
      j["peak_bf16_gflops"] = p.bf16_gflops ? nlohmann::json(*p.bf16_gflops) : nlohmann::json();
      j["fraction_of_peak"] = of ? nlohmann::json(gflops / *of) : nlohmann::json();
      j["peak_from_cache"] = peak->from_cache;
      j["peak_cache"] = peak_cache.string();
    }
    print_json(j);
    return;
  }
  std::printf("%s%s %s at %dx%d, batch %d, %s, %d thread(s), %s path\n",
              o.model.empty() ? "" : (o.model + ": ").c_str(), arch.arch.c_str(), nn::format_macs(macs).c_str(),
              o.size, o.size, o.batch_size, o.precision.c_str(), threads, path_name.c_str());
  std::printf("OpenMP waiting: %s\n", openmp_spin_policy().c_str());
  std::printf("median %.2f ms   p90 %.2f ms   %.2f images/s   %.1f GFLOP/s\n", r.median_ms, r.p90_ms,
              r.images_per_second, gflops);
  if (peak) print_peak_lines(*peak, peak_cache, gflops, precision);
  if (psnr_vs_fp32 >= 0) std::printf("bf16 output vs the fp32 module: PSNR %.1f dB (peak-to-peak 2)\n", psnr_vs_fp32);
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
  cmd->add_option("--kernels", opts->kernels,
                  "Stride-1 convs of the fp32 fast path: ganlite's direct kernels where they are faster (auto), "
                  "always (direct), or LibTorch's oneDNN ones (onednn)")
      ->check(one_of(nn::valid_conv_kernels()))
      ->capture_default_str();
  cmd->add_option("--runs", opts->runs, "Timed runs")->capture_default_str();
  cmd->add_option("--warmup", opts->warmup, "Untimed warm-up runs")->capture_default_str();
  cmd->add_flag("--eager", opts->eager, "Time the plain module forward (InferenceMode, NCHW) instead of the fast path");
  cmd->add_option("--onnx", opts->onnx,
                  "Time OpenCV DNN on this ONNX export of --model (`ganlite export`) instead of the fast path")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--verbose", opts->verbose, "List the fused steps of the inference plan on stderr");
  cmd->add_flag("--remeasure", opts->remeasure,
                "Measure the CPU's conv peak again and replace the cached figure "
                "($XDG_CACHE_HOME/ganlite/conv_peak.json or ~/.cache/ganlite/conv_peak.json)");
  auto* no_cache =
      cmd->add_flag("--no-cache", opts->no_cache, "Measure the CPU's conv peak without reading or writing the cache");
  no_cache->excludes("--remeasure");
  add_device_options(*cmd, opts->common, ThreadsDefault::idle_cores);
  add_output_options(*cmd, opts->common);
  cmd->callback([opts] { run_bench(*opts); });
}

}  // namespace

GANLITE_COMMAND("bench", 22, setup_bench);

}  // namespace ganlite::cli
