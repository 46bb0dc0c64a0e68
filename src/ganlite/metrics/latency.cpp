#include "ganlite/metrics/latency.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <memory>
#include <numeric>

#include "ganlite/nn/inference.h"
#include "ganlite/nn/translate.h"
#include "ganlite/torch_compat.h"
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

namespace {

LatencyResult summarise(std::vector<double> samples_ms, int64_t batch) {
  LatencyResult r;
  r.batch = batch;
  r.samples_ms = std::move(samples_ms);
  r.median_ms = quantile(r.samples_ms, 0.5);
  r.p90_ms = quantile(r.samples_ms, 0.9);
  r.mean_ms = std::accumulate(r.samples_ms.begin(), r.samples_ms.end(), 0.0) / static_cast<double>(r.samples_ms.size());
  r.min_ms = *std::min_element(r.samples_ms.begin(), r.samples_ms.end());
  r.images_per_second = r.median_ms > 0 ? static_cast<double>(batch) * 1000.0 / r.median_ms : 0.0;
  return r;
}

}  // namespace

std::vector<LatencyResult> measure_latency_interleaved(const std::vector<std::function<void()>>& run_once,
                                                       const torch::Device& device, int64_t batch,
                                                       const LatencyOptions& options) {
  require(options.runs >= 1, "latency runs must be >= 1, got " + std::to_string(options.runs));
  require(options.warmup >= 0, "latency warm-up runs must be >= 0, got " + std::to_string(options.warmup));
  require(batch >= 1, "latency batch must be >= 1, got " + std::to_string(batch));
  for (int i = 0; i < options.warmup; ++i) {
    for (const auto& run : run_once) run();
  }
  compat::synchronize(device);
  std::vector<std::vector<double>> samples(run_once.size());
  for (auto& s : samples) s.reserve(static_cast<size_t>(options.runs));
  for (int i = 0; i < options.runs; ++i) {
    for (size_t k = 0; k < run_once.size(); ++k) {
      compat::synchronize(device);
      const auto start = std::chrono::steady_clock::now();
      run_once[k]();
      compat::synchronize(device);
      const auto end = std::chrono::steady_clock::now();
      samples[k].push_back(std::chrono::duration<double, std::milli>(end - start).count());
    }
  }
  std::vector<LatencyResult> results;
  for (auto& s : samples) results.push_back(summarise(std::move(s), batch));
  return results;
}

LatencyResult measure_latency(const std::function<void()>& run_once, const torch::Device& device, int64_t batch,
                              const LatencyOptions& options) {
  return measure_latency_interleaved({run_once}, device, batch, options).front();
}

std::vector<LatencyResult> measure_generator_latencies(const std::vector<nn::GeneratorImpl*>& generators, int64_t size,
                                                       int64_t batch, const torch::Device& device,
                                                       const LatencyOptions& options) {
  require(size >= 1, "latency input size must be >= 1, got " + std::to_string(size));
  // What translate / eval run: the fast inference path in fp32 (eval semantics whatever the
  // module's mode, which the runner leaves alone).
  std::vector<std::function<void()>> runs;
  c10::InferenceMode inference;
  for (auto* generator : generators) {
    auto runner = std::make_shared<const nn::InferenceRunner>(*generator);
    const auto input =
        torch::rand({batch, generator->config().input_nc, size, size}, torch::TensorOptions().device(device)) * 2 - 1;
    const int64_t multiple = nn::size_multiple(generator->config());
    runs.push_back([runner, input, multiple] {
      (void)nn::translate_padded([&runner](const torch::Tensor& x) { return runner->forward(x); }, input, multiple);
    });
  }
  auto results = measure_latency_interleaved(runs, device, batch, options);
  for (auto& r : results) r.size = size;
  return results;
}

LatencyResult measure_generator_latency(nn::GeneratorImpl& generator, int64_t size, int64_t batch,
                                        const torch::Device& device, const LatencyOptions& options) {
  return measure_generator_latencies({&generator}, size, batch, device, options).front();
}

}  // namespace ganlite::metrics
