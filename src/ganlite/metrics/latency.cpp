#include "ganlite/metrics/latency.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>

#include "ganlite/nn/inference.h"
#include "ganlite/torch_compat.h"
#include "ganlite/train/translate.h"
#include "ganlite/util/error.h"

namespace ganlite::metrics {

nlohmann::json LatencyResult::to_json() const {
  return {{"median", median_ms}, {"p90", p90_ms},   {"mean", mean_ms},           {"min", min_ms},
          {"batch", batch},      {"size", size},    {"images_per_second", images_per_second},
          {"runs", samples_ms.size()}};
}

double quantile(std::vector<double> values, double q) {
  if (values.empty()) throw Error("quantile of an empty list");
  q = std::clamp(q, 0.0, 1.0);
  std::sort(values.begin(), values.end());
  const double pos = q * static_cast<double>(values.size() - 1);
  const auto lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  const double frac = pos - static_cast<double>(lo);
  return values[lo] + (values[hi] - values[lo]) * frac;
}

LatencyResult measure_latency(const std::function<void()>& run_once, const torch::Device& device, int64_t batch,
                              const LatencyOptions& options) {
  require(options.runs >= 1, "latency runs must be >= 1, got " + std::to_string(options.runs));
  require(options.warmup >= 0, "latency warm-up runs must be >= 0, got " + std::to_string(options.warmup));
  require(batch >= 1, "latency batch must be >= 1, got " + std::to_string(batch));
  for (int i = 0; i < options.warmup; ++i) run_once();
  compat::synchronize(device);
  LatencyResult r;
  r.batch = batch;
  r.samples_ms.reserve(static_cast<size_t>(options.runs));
  for (int i = 0; i < options.runs; ++i) {
    compat::synchronize(device);
    const auto start = std::chrono::steady_clock::now();
    run_once();
    compat::synchronize(device);
    const auto end = std::chrono::steady_clock::now();
    r.samples_ms.push_back(std::chrono::duration<double, std::milli>(end - start).count());
  }
  r.median_ms = quantile(r.samples_ms, 0.5);
  r.p90_ms = quantile(r.samples_ms, 0.9);
  r.mean_ms = std::accumulate(r.samples_ms.begin(), r.samples_ms.end(), 0.0) / static_cast<double>(r.samples_ms.size());
  r.min_ms = *std::min_element(r.samples_ms.begin(), r.samples_ms.end());
  r.images_per_second = r.median_ms > 0 ? static_cast<double>(batch) * 1000.0 / r.median_ms : 0.0;
  return r;
}

LatencyResult measure_generator_latency(nn::GeneratorImpl& generator, int64_t size, int64_t batch,
                                        const torch::Device& device, const LatencyOptions& options) {
  require(size >= 1, "latency input size must be >= 1, got " + std::to_string(size));
  // What translate / eval run: the fast inference path in fp32 (eval semantics whatever the
  // module's mode, which the runner leaves alone).
  const nn::InferenceRunner runner(generator);
  c10::InferenceMode inference;
  const auto input = torch::rand({batch, generator.config().input_nc, size, size},
                                 torch::TensorOptions().device(device)) * 2 - 1;
  const auto forward = [&runner](const torch::Tensor& x) { return runner.forward(x); };
  LatencyResult r = measure_latency([&] { (void)train::translate_padded(forward, input, train::size_multiple(generator.config())); },
                                    device, batch, options);
  r.size = size;
  return r;
}

}  // namespace ganlite::metrics
