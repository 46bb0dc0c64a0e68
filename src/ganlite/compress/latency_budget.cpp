#include "ganlite/compress/latency_budget.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ganlite/metrics/conv_peak.h"
#include "ganlite/nn/direct_conv.h"
#include "ganlite/nn/generator_family.h"
#include "ganlite/nn/profiler.h"
#include "ganlite/torch_compat.h"
#include "ganlite/util/atomic_file.h"
#include "ganlite/util/error.h"

namespace ganlite::compress {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// 2: thin stride-1 convs timed on the direct kernels the fast path runs them on.
constexpr const char* kTableFormat = "ganlite-latency-table-2";

json key_json(const LatencyTableKey& k) {
  return {{"cpu_model", k.cpu_model}, {"threads", k.threads}, {"precision", k.precision},
          {"size", k.size},           {"libtorch", k.libtorch}, {"isa_limit", k.isa_limit}};
}

LatencyTableKey key_from_json(const json& j) {
  LatencyTableKey k;
  k.cpu_model = j.value("cpu_model", "");
  k.threads = j.value("threads", 0);
  k.precision = j.value("precision", "");
  k.size = j.value("size", int64_t{0});
  k.libtorch = j.value("libtorch", "");
  k.isa_limit = j.value("isa_limit", "");
  return k;
}

// The cache file's entries; an absent or unreadable file has none (the table is rebuilt: it is
// a cache, and measuring takes seconds).
json read_entries(const fs::path& file) {
  std::ifstream in(file);
  if (!in) return json::array();
  try {
    const json doc = json::parse(in);
    if (doc.value("format", "") != kTableFormat || !doc.contains("entries") || !doc["entries"].is_array()) {
      return json::array();
    }
    return doc["entries"];
  } catch (const json::exception&) {
    return json::array();
  }
}

double unix_now() { return static_cast<double>(std::time(nullptr)); }

// The fastest of a few calls after a warm-up.
double best_call_ms(const std::function<void()>& call) {
  call();
  double best = 1e30, total = 0;
  for (int i = 0; i < 50 && (i < 3 || total < 20.0); ++i) {
    const auto start = std::chrono::steady_clock::now();
    call();
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    best = std::min(best, ms);
    total += ms;
  }
  return best;
}

// Whether the fast path runs this conv on its direct kernels (nn/inference_direct.cpp's automatic
// choice, per conv: inside a CAT block the choice is the block's, which a thin conv decides).
bool runs_direct(const ConvShape& s, torch::ScalarType dtype) {
  namespace dc = nn::direct_conv;
  const bool dense_or_depthwise = s.groups == 1 || (s.groups == s.in && s.in == s.out);
  return dtype == torch::kFloat && !s.transposed && s.stride == 1 && s.kernel % 2 == 1 && dense_or_depthwise &&
         dc::best_isa() != dc::Isa::portable && dc::thin(s.in, s.out);
}

double time_direct_conv_ms(const ConvShape& s) {
  namespace dc = nn::direct_conv;
  const int64_t p = s.kernel / 2;
  const bool depthwise = s.groups > 1;
  auto x = torch::rand({1, s.in, s.out_h + 2 * p, s.out_w + 2 * p});
  const auto w = torch::rand({s.out, depthwise ? 1 : s.in, s.kernel, s.kernel});
  auto y = torch::empty({1, s.out, s.out_h, s.out_w});
  const auto packed = dc::pack(w.data_ptr<float>(), nullptr, static_cast<int>(s.out), static_cast<int>(s.in),
                               static_cast<int>(s.kernel), depthwise, dc::best_isa());
  return best_call_ms([&] {
    dc::run(packed, {x.data_ptr<float>(), x.stride(0), x.stride(1), x.stride(2)},
            {y.data_ptr<float>(), y.stride(0), y.stride(1), y.stride(2)}, 1, static_cast<int>(s.out_h),
            static_cast<int>(s.out_w), {false, true});
  });
}

// The conv alone, as the fast path runs it.
double time_conv_ms(const ConvShape& s, torch::ScalarType dtype) {
  c10::InferenceMode guard;
  if (runs_direct(s, dtype)) return time_direct_conv_ms(s);
  const auto opts = torch::TensorOptions().dtype(dtype);
  torch::Tensor x, w;
  std::function<void()> call;
  if (s.transposed) {  // pass_sub_pixel: a 2x2 conv to 4x the channels at the input's size, padded by one
    x = torch::rand({1, s.in, s.out_h / 2 + 1, s.out_w / 2 + 1}, opts).contiguous(at::MemoryFormat::ChannelsLast);
    w = torch::rand({4 * s.out, s.in, 2, 2}, opts).contiguous(at::MemoryFormat::ChannelsLast);
    call = [&] { (void)at::conv2d(x, w); };
  } else {
    const int64_t pad = s.kernel / 2;
    x = torch::rand({1, s.in, s.out_h * s.stride, s.out_w * s.stride}, opts).contiguous(at::MemoryFormat::ChannelsLast);
    w = torch::rand({s.out, s.in / s.groups, s.kernel, s.kernel}, opts).contiguous(at::MemoryFormat::ChannelsLast);
    call = [&, pad] {
      (void)at::conv2d(x, w, {}, {s.stride, s.stride}, {pad, pad}, {1, 1}, s.groups);
    };
  }
  return best_call_ms(call);
}

}  // namespace

std::string ConvShape::key() const {
  std::ostringstream s;
  s << (transposed ? "t" : "c") << in << "-" << out << "-k" << kernel << "-g" << groups << "-s" << stride << "-"
    << out_h << "x" << out_w;
  return s.str();
}

bool LatencyTableKey::operator==(const LatencyTableKey& o) const {
  return cpu_model == o.cpu_model && threads == o.threads && precision == o.precision && size == o.size &&
         libtorch == o.libtorch && isa_limit == o.isa_limit;
}

LatencyTableKey current_latency_table_key(const std::string& precision, int64_t size) {
  return {metrics::cpu_model_name(), at::get_num_threads(), precision, size, compat::torch_version(),
          metrics::onednn_isa_limit()};
}

fs::path default_latency_table_cache() {
  const auto peak = metrics::default_conv_peak_cache();  // same folder, same rules
  return peak.empty() ? peak : peak.parent_path() / "latency_table.json";
}

MeasuredLatencyTable::MeasuredLatencyTable(LatencyTableKey key, fs::path cache, double max_age_days)
    : key_(std::move(key)), cache_(std::move(cache)) {
  if (cache_.empty()) return;
  for (const auto& e : read_entries(cache_)) {
    if (!e.is_object() || !(key_from_json(e.value("key", json::object())) == key_)) continue;
    if (unix_now() - e.value("created", 0.0) > max_age_days * 86400.0) continue;  // stale: rebuilt
    const json conv_ms = e.value("conv_ms", json::object());  // items() must not outlive it
    for (const auto& [shape, ms] : conv_ms.items()) {
      if (ms.is_number() && ms.get<double>() > 0) ms_[shape] = ms.get<double>();
    }
  }
}

double MeasuredLatencyTable::conv_ms(const ConvShape& shape) {
  const auto key = shape.key();
  if (const auto it = ms_.find(key); it != ms_.end()) return it->second;
  const double ms = time_conv_ms(shape, key_.precision == "bf16" ? torch::kBFloat16 : torch::kFloat);
  ms_[key] = ms;
  ++measured_;
  return ms;
}

void MeasuredLatencyTable::save() const {
  if (cache_.empty() || measured_ == 0) return;
  json kept = json::array();
  double created = unix_now();
  for (const auto& e : read_entries(cache_)) {
    if (e.is_object() && key_from_json(e.value("key", json::object())) == key_) {
      created = std::min(created, e.value("created", created));  // an entry extended keeps its age
      continue;
    }
    kept.push_back(e);
  }
  json conv_ms = json::object();
  for (const auto& [shape, ms] : ms_) conv_ms[shape] = ms;
  kept.push_back({{"key", key_json(key_)}, {"created", created}, {"conv_ms", conv_ms}});
  try {
    fs::create_directories(cache_.parent_path());
    write_file_atomic(cache_, json{{"format", kTableFormat}, {"entries", kept}}.dump(1) + "\n");
  } catch (const std::exception& e) {
    throw Error("cannot write the latency table cache '" + cache_.string() + "': " + e.what() +
                " (pass --no-cache)");
  }
}

std::vector<ConvShape> generator_convs(const nn::ArchConfig& config, int64_t size) {
  const int64_t multiple = nn::size_multiple(config);
  int64_t small = size;
  while (small % (2 * multiple) == 0 && small / 2 >= 16) small /= 2;
  const int64_t scale = size / small;
  torch::manual_seed(0);
  auto generator = nn::make_generator(config);
  const auto profile = nn::profile_generator(*generator, small);
  std::map<std::string, std::shared_ptr<torch::nn::Module>> modules;
  for (const auto& item : generator->named_modules()) modules[item.key()] = item.value();
  std::vector<ConvShape> convs;
  for (const auto& layer : profile.layers) {
    const auto it = modules.find(layer.name);
    if (it == modules.end() || layer.output_shape.size() != 4) continue;
    ConvShape s;
    s.out_h = layer.output_shape[2] * scale;
    s.out_w = layer.output_shape[3] * scale;
    if (const auto* c = dynamic_cast<const torch::nn::Conv2dImpl*>(it->second.get())) {
      const auto& o = c->options;
      s.in = o.in_channels();
      s.out = o.out_channels();
      s.kernel = (*o.kernel_size())[0];
      s.stride = (*o.stride())[0];
      s.groups = o.groups();
    } else if (const auto* t = dynamic_cast<const torch::nn::ConvTranspose2dImpl*>(it->second.get())) {
      s.in = t->options.in_channels();
      s.out = t->options.out_channels();
      s.kernel = (*t->options.kernel_size())[0];
      s.stride = (*t->options.stride())[0];
      s.transposed = true;
    } else {
      continue;
    }
    if (s.in > 0 && s.out > 0) convs.push_back(s);
  }
  return convs;
}

double table_latency_ms(const std::vector<ConvShape>& convs, LayerLatencyTable& table) {
  double ms = 0;
  for (const auto& c : convs) ms += table.conv_ms(c);
  return ms;
}

LatencyThreshold search_latency_threshold(double lo, double hi, double target_ms,
                                          const std::function<double(double)>& latency_at, int max_steps) {
  LatencyThreshold r;
  r.threshold = hi;
  r.predicted_ms = latency_at(hi);
  const double lo_ms = latency_at(lo);
  r.steps = 2;
  if (lo_ms <= target_ms) return {lo, lo_ms, r.steps};  // the least pruned student already meets it
  // Invariant: latency_at(lo) > target, latency_at(hi) is the best known that meets it (or hi is
  // the most pruned student there is).
  while (hi - lo > 1e-3 * std::max(std::abs(lo), 1e-12) && r.steps < max_steps) {
    const double mid = (lo + hi) / 2;
    const double ms = latency_at(mid);
    ++r.steps;
    if (ms <= target_ms) {
      hi = mid;
      r.threshold = mid;
      r.predicted_ms = ms;
    } else {
      lo = mid;
    }
  }
  return r;
}

namespace {

// Measured within [lower_fraction, 1] x the budget.
bool in_window(double ms, const LatencyBudgetOptions& o) {
  return ms <= o.target_ms && ms >= o.lower_fraction * o.target_ms;
}

// Which measured candidate to keep: one in the window (the slowest such), else the slowest that
// meets the budget, else the fastest.
size_t best_round(const std::vector<LatencyRound>& rounds, const LatencyBudgetOptions& o) {
  size_t best = 0;
  auto rank = [&](const LatencyRound& r) {
    if (in_window(r.measured_ms, o)) return 2;
    return r.measured_ms <= o.target_ms ? 1 : 0;
  };
  for (size_t i = 1; i < rounds.size(); ++i) {
    const auto &a = rounds[i], &b = rounds[best];
    if (rank(a) != rank(b)) {
      if (rank(a) > rank(b)) best = i;
    } else if (rank(a) > 0 ? a.measured_ms > b.measured_ms : a.measured_ms < b.measured_ms) {
      best = i;
    }
  }
  return best;
}

}  // namespace

namespace {

// One search for the budget with the widths of `prune` (its rounding included): predict,
// time, recalibrate, until a student lands in the window or the rounds run out.
struct CandidateSearch {
  std::vector<LatencyRound> rounds;
  std::vector<PruneResult> students;
  std::map<double, double> table_ms;  // by threshold
};

CandidateSearch search_candidates(const nn::GeneratorImpl& teacher, const LatencyBudgetOptions& options,
                                  const PruneOptions& prune, LayerLatencyTable& table,
                                  const std::function<double(nn::GeneratorImpl&)>& measure_ms) {
  const double gmax = gamma_range(teacher).second;
  // Table sums per threshold's widths (thresholds with the same widths share one).
  std::map<std::string, double> by_widths;
  auto table_ms_at = [&](double t) {
    nn::ArchConfig c = teacher.config();
    c.widths = widths_at_threshold(teacher, t, prune.min_channels, prune.rounding);
    const std::string key = c.to_json().dump();
    if (const auto it = by_widths.find(key); it != by_widths.end()) return it->second;
    return by_widths[key] = table_latency_ms(generator_convs(c, prune.input_size), table);
  };
  CandidateSearch out;
  double calibration = 1.0;  // measured / table sum, from the last timed student
  for (int round = 0; round < options.max_rounds; ++round) {
    const auto found = search_latency_threshold(0.0, gmax, options.target_ms,
                                                [&](double t) { return calibration * table_ms_at(t); });
    // Timing the same student twice teaches nothing: stop once the search repeats itself.
    if (out.table_ms.count(found.threshold) != 0) break;
    auto student = prune_at_threshold(teacher, found.threshold, prune);
    student.student->eval();
    LatencyRound r;
    r.threshold = found.threshold;
    r.predicted_ms = found.predicted_ms;
    r.measured_ms = measure_ms(*student.student);
    r.macs = student.macs_after;
    const double table_sum = out.table_ms[found.threshold] = table_ms_at(found.threshold);
    r.calibration = table_sum > 0 ? r.measured_ms / table_sum : 1.0;
    out.rounds.push_back(r);
    out.students.push_back(std::move(student));
    if (in_window(r.measured_ms, options)) break;
    calibration = r.calibration;
  }
  return out;
}

// Whether student `a` (another family's best) beats `b`: it meets a budget that `b` misses, or it
// meets the budget with more MACs (more of the teacher) while it is no slower than `b` or lands in
// the window.
bool better_student(const LatencyRound& a, const LatencyRound& b, const LatencyBudgetOptions& o) {
  const bool a_meets = a.measured_ms <= o.target_ms, b_meets = b.measured_ms <= o.target_ms;
  if (a_meets != b_meets) return a_meets;
  return a_meets && a.macs > b.macs && (a.measured_ms <= b.measured_ms || in_window(a.measured_ms, o));
}

}  // namespace

LatencyBudgetResult prune_to_latency_budget(const nn::GeneratorImpl& teacher, const LatencyBudgetOptions& options,
                                            LayerLatencyTable& table,
                                            const std::function<double(nn::GeneratorImpl&)>& measure_ms) {
  require(options.target_ms > 0, "the latency budget must be positive");
  require(options.max_rounds >= 1, "the latency search needs at least one timed round");
  require(options.lane_width >= 0, "the lane width must be >= 0");
  const int64_t multiple = nn::size_multiple(teacher.config());
  require(options.prune.input_size >= 16 && options.prune.input_size % multiple == 0,
          "--input-size must be a multiple of " + std::to_string(multiple) + " and >= 16, got " +
              std::to_string(options.prune.input_size));
  // The families of widths searched: CAT's exact counts, then (with a lane width) the counts
  // rounded up and to the nearer multiple; the exact family's best is kept unless another's is better.
  std::vector<std::pair<std::string, ChannelRounding>> families{{"exact", {}}};
  if (options.lane_width > 1) {
    families.push_back({"up", {options.lane_width, false}});
    families.push_back({"nearest", {options.lane_width, true}});
  }
  LatencyBudgetResult result;
  CandidateSearch chosen;
  size_t best = 0;
  for (const auto& [name, rounding] : families) {
    PruneOptions prune = options.prune;
    prune.rounding = rounding;
    auto found = search_candidates(teacher, options, prune, table, measure_ms);
    const size_t b = best_round(found.rounds, options);
    result.families.push_back({name, found.rounds[b]});
    if (chosen.rounds.empty() || better_student(found.rounds[b], chosen.rounds[best], options)) {
      chosen = std::move(found);
      best = b;
      result.rounding = name;
    }
  }
  result.lane_width = options.lane_width;
  result.target_ms = options.target_ms;
  result.rounds = chosen.rounds;
  result.prune = std::move(chosen.students[best]);
  result.predicted_ms = chosen.rounds[best].predicted_ms;
  result.measured_ms = chosen.rounds[best].measured_ms;
  result.table_ms = chosen.table_ms.at(chosen.rounds[best].threshold);
  result.met = in_window(result.measured_ms, options);
  return result;
}

double parse_latency_ms(const std::string& text) {
  std::string number = text, unit = "ms";
  for (const char* suffix : {"ms", "s"}) {
    const std::string s = suffix;
    if (text.size() > s.size() && text.compare(text.size() - s.size(), s.size(), s) == 0) {
      number = text.substr(0, text.size() - s.size());
      unit = s;
      break;
    }
  }
  char* end = nullptr;
  const double value = std::strtod(number.c_str(), &end);
  if (number.empty() || end == nullptr || *end != '\0' || !(value > 0) || !std::isfinite(value)) {
    throw UsageError("--target-latency: '" + text + "' is no positive duration (e.g. 30ms, 0.03s)");
  }
  return unit == "s" ? value * 1000.0 : value;
}

}  // namespace ganlite::compress
