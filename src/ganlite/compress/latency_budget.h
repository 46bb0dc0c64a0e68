// Pruning to a latency budget (issue 19): CAT's one global |gamma| threshold (compress/prune.h),
// chosen so the student meets a latency measured on this machine instead of a MAC count.
//
// A student's latency is predicted from a per-layer table (each conv of the student as the fast
// path runs it: channels-last, the compute dtype, batch 1, timed once per shape on this machine and
// cached per CPU model, threads, precision, size and LibTorch), scaled by a calibration factor that
// the timed students fix: the table leaves out what is not a conv (pads, activations, additions)
// and the fast path's merges. The search bisects the threshold on the prediction, times the
// student it found, recalibrates and searches again until the measured latency lands in
// [lower_fraction, 1] x budget.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ganlite/compress/prune.h"
#include "ganlite/nn/generator.h"

namespace ganlite::compress {

// One conv as the fast path runs it, at batch 1.
struct ConvShape {
  int64_t in = 0, out = 0, kernel = 1, groups = 1, stride = 1;
  int64_t out_h = 0, out_w = 0;
  bool transposed = false;  // a stride-2 transposed conv (run as a 2x2 conv + pixel shuffle)

  std::string key() const;  // "c64-128-k3-g1-s2-64x64", "t..." for transposed
};

// Milliseconds per conv shape.
class LayerLatencyTable {
 public:
  virtual ~LayerLatencyTable() = default;
  virtual double conv_ms(const ConvShape& shape) = 0;
};

// What a measured table depends on: its cache key.
struct LatencyTableKey {
  std::string cpu_model;
  int threads = 0;
  std::string precision;  // "fp32" | "bf16"
  int64_t size = 0;       // input side the student runs at
  std::string libtorch;
  std::string isa_limit;
  bool operator==(const LatencyTableKey& o) const;
};
LatencyTableKey current_latency_table_key(const std::string& precision, int64_t size);

// Times each shape on first use (the fastest of a few calls after a warm-up; ~1-20 ms a shape)
// and keeps the figures in `cache` ($XDG_CACHE_HOME/ganlite/latency_table.json by default; empty:
// no cache). An entry older than `max_age_days`, or one for another key, is rebuilt.
class MeasuredLatencyTable : public LayerLatencyTable {
 public:
  MeasuredLatencyTable(LatencyTableKey key, std::filesystem::path cache, double max_age_days = 7);
  double conv_ms(const ConvShape& shape) override;
  // Writes the figures measured since construction (atomically; other keys' entries kept).
  // Throws Error naming the file when it cannot be written.
  void save() const;
  int measured() const { return measured_; }  // shapes timed by this object
  int cached() const { return static_cast<int>(ms_.size()) - measured_; }
  const std::filesystem::path& cache() const { return cache_; }

 private:
  LatencyTableKey key_;
  std::filesystem::path cache_;
  std::map<std::string, double> ms_;
  int measured_ = 0;
};

// $XDG_CACHE_HOME/ganlite/latency_table.json, else ~/.cache/ganlite/...; empty when neither is set.
std::filesystem::path default_latency_table_cache();

// The convs of an architecture at size x size (shapes from one profiled forward at a reduced size,
// scaled exactly as count_generator_macs does).
std::vector<ConvShape> generator_convs(const nn::ArchConfig& config, int64_t size);

// Sum of the table's figures over `convs`.
double table_latency_ms(const std::vector<ConvShape>& convs, LayerLatencyTable& table);

// The smallest threshold in [lo, hi] whose predicted latency is <= target_ms (the largest student
// that meets it), by bisection to 1e-3 relative: latency_at is taken as non-increasing in the
// threshold (pruning more never adds a channel). lo when it already meets the target; hi (the
// most pruned student) when nothing does.
struct LatencyThreshold {
  double threshold = 0;
  double predicted_ms = 0;
  int steps = 0;
};
LatencyThreshold search_latency_threshold(double lo, double hi, double target_ms,
                                          const std::function<double(double)>& latency_at, int max_steps = 60);

struct LatencyBudgetOptions {
  double target_ms = 0;
  PruneOptions prune;            // input_size, min_channels, inherit_weights (target_macs unused)
  double lower_fraction = 0.90;  // accept a measured latency in [lower_fraction, 1] x target
  int max_rounds = 4;            // timed students at most (per candidate family)
  // > 1: also search with every kept width rounded up, and to the nearer multiple, of this
  // (metrics::conv_lane_width(): a conv's time steps with ceil(out / lanes)); 0: exact widths only.
  int lane_width = 0;
};

struct LatencyRound {
  double threshold = 0, predicted_ms = 0, measured_ms = 0, calibration = 0;
  int64_t macs = 0;
};

struct LatencyBudgetResult {
  PruneResult prune;
  double target_ms = 0;
  double predicted_ms = 0;  // the chosen student's calibrated prediction before it was timed
  double measured_ms = 0;   // its measured latency
  double table_ms = 0;      // its uncalibrated table sum
  bool met = false;         // measured within [lower_fraction, 1] x target
  std::vector<LatencyRound> rounds;  // the chosen family's timed students
  int lane_width = 0;                // as in the options
  std::string rounding = "exact";    // the chosen family: exact | up | nearest
  std::vector<std::pair<std::string, LatencyRound>> families;  // each family's best student
};

// Searches, times the student (`measure_ms`, called with each candidate), recalibrates, and keeps
// the best candidate: one in the window, else the slowest that meets the budget, else the fastest.
// With a lane width, two more families of students, with widths rounded up and to the nearer lane
// multiple, are searched the same way; one's best replaces the exact one's when it meets a budget
// the exact one misses, or meets it with more MACs while no slower or inside the window.
// `measure_ms` is injected so tests run the search on a fake machine. Throws UsageError for a
// non-positive target and as prune_to_mac_budget does for a teacher it cannot prune.
LatencyBudgetResult prune_to_latency_budget(const nn::GeneratorImpl& teacher, const LatencyBudgetOptions& options,
                                            LayerLatencyTable& table,
                                            const std::function<double(nn::GeneratorImpl&)>& measure_ms);

// "30ms", "0.03s", "30" (milliseconds) -> milliseconds; UsageError otherwise.
double parse_latency_ms(const std::string& text);

}  // namespace ganlite::compress
