#include "ganlite/metrics/conv_peak.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ganlite/nn/inference.h"
#include "ganlite/torch_compat.h"
#include "ganlite/util/atomic_file.h"
#include "ganlite/util/error.h"

namespace ganlite::metrics {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr const char* kCacheFormat = "ganlite-conv-peak";
constexpr int kCacheVersion = 1;

std::string trim(const std::string& s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  return s.substr(first, s.find_last_not_of(" \t\r") - first + 1);
}

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

json key_json(const ConvPeakKey& k) {
  return {{"cpu_model", k.cpu_model}, {"threads", k.threads}, {"isa_limit", k.isa_limit}, {"libtorch", k.libtorch}};
}

// One cache entry; throws Error naming the file and the entry for a malformed one.
ConvPeak peak_from_json(const json& e, const fs::path& file, size_t index) {
  const std::string where = "conv peak cache '" + file.string() + "', entry " + std::to_string(index);
  const auto is_figure = [](const json& v) {
    return v.is_number() && std::isfinite(v.get<double>()) && v.get<double>() > 0;
  };
  // Thread counts are refused, never narrowed, outside [1, 65536].
  const auto is_threads = [](const json& v) {
    return v.is_number_unsigned() && v.get<uint64_t>() >= 1 && v.get<uint64_t>() <= 65536;
  };
  if (!e.is_object() || !e.contains("cpu_model") || !e["cpu_model"].is_string() || !e.contains("threads") ||
      !is_threads(e["threads"]) || !e.contains("fp32_gflops") || !is_figure(e["fp32_gflops"])) {
    throw Error(where + ": needs cpu_model (string), threads (integer in [1, 65536]) and fp32_gflops (positive "
                "number); delete the file or pass --remeasure");
  }
  for (const char* field : {"isa_limit", "libtorch"}) {
    if (e.contains(field) && !e[field].is_string()) throw Error(where + ": '" + field + "' must be a string");
  }
  const json bf16 = e.value("bf16_gflops", json());
  if (!bf16.is_null() && !is_figure(bf16)) throw Error(where + ": 'bf16_gflops' must be a positive number or null");
  ConvPeak p;
  p.key.cpu_model = e["cpu_model"].get<std::string>();
  p.key.threads = static_cast<int>(e["threads"].get<uint64_t>());
  p.key.isa_limit = e.value("isa_limit", "");
  p.key.libtorch = e.value("libtorch", "");
  p.fp32_gflops = e["fp32_gflops"].get<double>();
  if (!bf16.is_null()) p.bf16_gflops = bf16.get<double>();
  return p;
}

// The cache file's entries; an absent file has none. Throws Error naming the file otherwise.
json read_entries(const fs::path& file) {
  if (!fs::exists(file)) return json::array();
  json j;
  try {
    j = json::parse(read_file(file));
  } catch (const json::exception& e) {
    throw Error("conv peak cache '" + file.string() + "' is not valid JSON (" + e.what() +
                "); delete it or pass --remeasure");
  }
  if (!j.is_object() || j.value("format", "") != kCacheFormat || !j.contains("entries") || !j["entries"].is_array()) {
    throw Error("conv peak cache '" + file.string() + "' is not a ganlite conv peak file (format '" + kCacheFormat +
                "' with an 'entries' list); delete it or pass --remeasure");
  }
  const json& entries = j["entries"];
  for (size_t i = 0; i < entries.size(); ++i) (void)peak_from_json(entries[i], file, i);
  return entries;
}

}  // namespace

json ConvPeak::to_json() const {
  json j = key_json(key);
  j["fp32_gflops"] = fp32_gflops;
  j["bf16_gflops"] = bf16_gflops ? json(*bf16_gflops) : json();
  return j;
}

std::string cpu_model_from_cpuinfo(const std::string& cpuinfo) {
  std::istringstream in(cpuinfo);
  std::string line, fallback;
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string field = trim(line.substr(0, colon)), value = trim(line.substr(colon + 1));
    if (value.empty()) continue;
    if (field == "model name") return value;
    // Other architectures name the chip differently (ARM: Hardware / Processor, MIPS: cpu model).
    if (fallback.empty() && (field == "Hardware" || field == "Processor" || field == "cpu model")) fallback = value;
  }
  return fallback.empty() ? "unknown CPU" : fallback;
}

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::stringstream text;
  text << in.rdbuf();
  return cpu_model_from_cpuinfo(text.str());
}

std::string onednn_isa_limit() {
  const std::string limit = env_or_empty("ONEDNN_MAX_CPU_ISA");
  return limit.empty() ? env_or_empty("DNNL_MAX_CPU_ISA") : limit;
}

bool onednn_isa_allows_bf16(const std::string& isa_limit) {
  const std::string isa = upper(isa_limit);  // oneDNN reads the value case-insensitively
  return isa.empty() || isa == "ALL" || isa.rfind("AVX512_CORE", 0) == 0 || isa.rfind("AVX10", 0) == 0;
}

bool onednn_isa_allows_native_bf16(const std::string& isa_limit) {
  const std::string isa = upper(isa_limit);
  return onednn_isa_allows_bf16(isa) && isa != "AVX512_CORE" && isa != "AVX512_CORE_VNNI";
}

bool native_bf16_convs() {
  return nn::bf16_is_fast(torch::kCPU) && onednn_isa_allows_native_bf16(onednn_isa_limit());
}

int conv_lane_width_for(bool cpu_has_avx512, bool cpu_has_avx2, const std::string& isa_limit) {
  const std::string isa = upper(isa_limit);
  const bool limit_allows_avx512 = onednn_isa_allows_bf16(isa);  // AVX512_CORE and above
  const bool limit_allows_avx2 = limit_allows_avx512 || isa.rfind("AVX2", 0) == 0 || isa == "AVX";
  if (cpu_has_avx512 && limit_allows_avx512) return 16;
  if ((cpu_has_avx2 || cpu_has_avx512) && limit_allows_avx2) return 8;
  return 4;
}

int conv_lane_width() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool avx512 = __builtin_cpu_supports("avx512f"), avx2 = __builtin_cpu_supports("avx2");
  return conv_lane_width_for(avx512, avx2, onednn_isa_limit());
#else
  return 4;  // NEON: four fp32 lanes
#endif
}

ConvPeakKey current_conv_peak_key() {
  ConvPeakKey k;
  k.cpu_model = cpu_model_name();
  k.threads = at::get_num_threads();
  k.isa_limit = onednn_isa_limit();
  k.libtorch = compat::torch_version();
  return k;
}

double measure_conv_gflops(bool bf16, const ConvPeakOptions& o) {
  require(o.seconds > 0, "conv peak: seconds must be positive");
  require(o.channels >= 1 && o.side >= 1, "conv peak: channels and side must be positive");
  const auto dtype = bf16 ? torch::kBFloat16 : torch::kFloat;
  // Channels-last activations and weights: the layout the fast inference path hands oneDNN.
  // Constant values: the time does not depend on them, and the caller's random stream is untouched.
  const auto cl = at::MemoryFormat::ChannelsLast;
  const auto x = torch::full({1, o.channels, o.side, o.side}, 0.5, torch::dtype(dtype)).contiguous(cl);
  const auto w = torch::full({o.channels, o.channels, 3, 3}, 0.01, torch::dtype(dtype)).contiguous(cl);
  const auto b = torch::zeros({o.channels}, torch::dtype(dtype));
  c10::InferenceMode guard;
  (void)at::conv2d(x, w, b, 1, 1);  // untimed: oneDNN builds its primitive on the first call
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  double best = 1e300, elapsed = 0;
  for (int i = 0; i < 3 || elapsed < o.seconds; ++i) {
    const auto t0 = clock::now();
    (void)at::conv2d(x, w, b, 1, 1);
    const auto t1 = clock::now();
    best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
    elapsed = std::chrono::duration<double>(t1 - start).count();
  }
  const double macs = static_cast<double>(o.channels) * o.channels * 9.0 * o.side * o.side;
  return 2.0 * macs / (std::max(best, 1e-9) * 1e9);
}

ConvPeak measure_conv_peak(const ConvPeakOptions& options) {
  ConvPeak p;
  p.key = current_conv_peak_key();
  p.fp32_gflops = measure_conv_gflops(false, options);
  if (native_bf16_convs()) p.bf16_gflops = measure_conv_gflops(true, options);
  return p;
}

fs::path default_conv_peak_cache() {
  const std::string xdg = env_or_empty("XDG_CACHE_HOME");
  if (!xdg.empty()) return fs::path(xdg) / "ganlite" / "conv_peak.json";
  const std::string home = env_or_empty("HOME");
  if (!home.empty()) return fs::path(home) / ".cache" / "ganlite" / "conv_peak.json";
  return {};
}

std::optional<ConvPeak> read_cached_conv_peak(const fs::path& file, const ConvPeakKey& key) {
  const json entries = read_entries(file);
  for (size_t i = 0; i < entries.size(); ++i) {
    ConvPeak p = peak_from_json(entries[i], file, i);
    if (p.key == key) return p;
  }
  return std::nullopt;
}

void store_conv_peak(const fs::path& file, const ConvPeak& peak, bool discard_invalid) {
  json entries = json::array();
  try {
    entries = read_entries(file);
  } catch (const Error&) {
    if (!discard_invalid) throw;
  }
  json kept = json::array();
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!(peak_from_json(entries[i], file, i).key == peak.key)) kept.push_back(entries[i]);
  }
  kept.push_back(peak.to_json());
  const json doc{{"format", kCacheFormat}, {"version", kCacheVersion}, {"entries", kept}};
  try {
    if (file.has_parent_path()) fs::create_directories(file.parent_path());
    write_file_atomic(file, doc.dump(2) + "\n");
  } catch (const std::exception& e) {
    throw Error("cannot write the conv peak cache '" + file.string() + "': " + e.what() + " (pass --no-cache)");
  }
}

ConvPeakLookup conv_peak(const fs::path& file, bool remeasure, const ConvPeakOptions& options) {
  ConvPeakLookup r;
  if (!file.empty() && !remeasure) {
    if (auto cached = read_cached_conv_peak(file, current_conv_peak_key())) {
      r.peak = *cached;
      r.from_cache = true;
      return r;
    }
  }
  r.peak = measure_conv_peak(options);
  if (!file.empty()) store_conv_peak(file, r.peak, remeasure);
  return r;
}

}  // namespace ganlite::metrics
