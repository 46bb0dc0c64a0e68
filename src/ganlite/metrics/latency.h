// Wall-clock latency of a forward pass: warm-up runs, then timed runs with the device
// synchronised around each, reported as median / p90 in milliseconds and images per second.
// The timed work is a callable, so any inference path (a generator, an optimised runner) is
// measured the same way.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <vector>

#include "ganlite/nn/generator.h"

namespace ganlite::metrics {

struct LatencyOptions {
  int warmup = 3;  // untimed runs first (allocator, oneDNN / cuDNN algorithm choice)
  int runs = 10;   // timed runs, >= 1
};

struct LatencyResult {
  double median_ms = 0;
  double p90_ms = 0;
  double mean_ms = 0;
  double min_ms = 0;
  double images_per_second = 0;  // batch / median
  int64_t batch = 1;
  int64_t size = 0;  // input side, when known (0 otherwise)
  std::vector<double> samples_ms;  // every timed run, in order

  nlohmann::json to_json() const;
};

// The q-quantile (q in [0, 1]) with linear interpolation between order statistics, as
// numpy.percentile's default. Throws Error for an empty list.
double quantile(std::vector<double> values, double q);

// Calls `run_once` options.warmup times, then options.runs times timed, synchronising `device`
// before and after each timed call. `batch` is the number of images one call processes.
// Throws UsageError for runs < 1, warmup < 0 or batch < 1.
LatencyResult measure_latency(const std::function<void()>& run_once, const torch::Device& device, int64_t batch,
                              const LatencyOptions& options = {});

// Several callables timed in interleaved rounds (one timed run of each per round, after
// options.warmup untimed rounds), so that a transient slowdown of the machine falls on all of them
// alike instead of on whichever was being timed: what a teacher-to-student speed ratio needs.
// One result per callable, in order; the same errors as measure_latency.
std::vector<LatencyResult> measure_latency_interleaved(const std::vector<std::function<void()>>& run_once,
                                                       const torch::Device& device, int64_t batch,
                                                       const LatencyOptions& options = {});

// Latency of `generator` (on `device`) through the fast inference path (nn::InferenceRunner, fp32,
// eval semantics; the module itself is untouched) on a random batch x input_nc x size x size
// input, padded to the architecture's multiple as translate does.
LatencyResult measure_generator_latency(nn::GeneratorImpl& generator, int64_t size, int64_t batch,
                                        const torch::Device& device, const LatencyOptions& options = {});

// measure_generator_latency for several generators in interleaved rounds (see above).
std::vector<LatencyResult> measure_generator_latencies(const std::vector<nn::GeneratorImpl*>& generators, int64_t size,
                                                       int64_t batch, const torch::Device& device,
                                                       const LatencyOptions& options = {});

}  // namespace ganlite::metrics
