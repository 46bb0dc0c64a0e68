// The conv throughput this CPU reaches through LibTorch's oneDNN kernels, measured here: one large
// dense 3x3 conv (channels-last, wide enough to be compute bound) timed for a fraction of a second
// in fp32, and in bf16 where the CPU has it natively (avx512_bf16 or AMX). `ganlite bench` reports
// its achieved GFLOP/s as a fraction of it. The figure is cached per CPU model and thread count in
// a small JSON file, so it is measured once per machine.
#pragma once
#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>

namespace ganlite::metrics {

// What a measurement depends on besides the chip's clock: the cache key.
struct ConvPeakKey {
  std::string cpu_model;  // /proc/cpuinfo "model name"
  int threads = 0;        // LibTorch intra-op threads
  std::string isa_limit;  // ONEDNN_MAX_CPU_ISA / DNNL_MAX_CPU_ISA when set, else empty
  std::string libtorch;   // LibTorch version (its oneDNN picks the kernels)

  bool operator==(const ConvPeakKey& o) const {
    return cpu_model == o.cpu_model && threads == o.threads && isa_limit == o.isa_limit && libtorch == o.libtorch;
  }
};

struct ConvPeak {
  ConvPeakKey key;
  double fp32_gflops = 0;
  std::optional<double> bf16_gflops;  // nullopt: no native bf16 on this CPU (emulated bf16 is no peak)

  nlohmann::json to_json() const;
};

struct ConvPeakOptions {
  // 256 -> 256 channels at 32x32 (0.6 GMACs a call): compute bound, and the fastest of the shapes
  // tried on a 2-core Zen 4 (fp32 and bf16, 1 and 2 threads; 48x48 split less evenly).
  double seconds = 0.25;  // timed time per precision, after one untimed call
  int channels = 256;     // input = output channels of the 3x3 conv
  int side = 32;          // square input side (padding 1: the output has the same side)
};

// The CPU's name in the text of /proc/cpuinfo: "model name" (x86), else "Hardware" / "Processor"
// / "cpu model" (other architectures); "unknown CPU" when none is found.
std::string cpu_model_from_cpuinfo(const std::string& cpuinfo);
// cpu_model_from_cpuinfo of this machine's /proc/cpuinfo.
std::string cpu_model_name();

// The oneDNN ISA limit of this process: ONEDNN_MAX_CPU_ISA, else DNNL_MAX_CPU_ISA, else empty.
std::string onednn_isa_limit();
// Whether oneDNN can run bf16 convs at all under `isa_limit` (empty: no limit): at AVX512_CORE or
// above. Below it, on a CPU with AVX-512, LibTorch still sends bf16 convs to oneDNN, which then
// fails ("could not create a primitive descriptor iterator").
bool onednn_isa_allows_bf16(const std::string& isa_limit);
// Whether the limit keeps oneDNN's native bf16 kernels (AVX512_CORE_BF16, AMX, AVX10, ALL).
bool onednn_isa_allows_native_bf16(const std::string& isa_limit);
// True when this CPU has native bf16 (nn::bf16_is_fast) and the ISA limit lets oneDNN use it.
bool native_bf16_convs();

// Output channels a vectorised conv kernel computes at once (oneDNN's channel block: 16 with
// AVX-512, in fp32 and bf16 alike; 8 with AVX/AVX2; 4 otherwise), under the ISA limit: a conv's
// time steps with ceil(out / lanes) (issue 19). `conv_lane_width_for` is the rule, testable.
int conv_lane_width_for(bool cpu_has_avx512, bool cpu_has_avx2, const std::string& isa_limit);
int conv_lane_width();

// The key for the current process: cpu_model_name(), at::get_num_threads(), onednn_isa_limit()
// and the LibTorch version.
ConvPeakKey current_conv_peak_key();

// GFLOP/s (2 x MACs / time) of the fastest of the timed calls of the conv in `bf16` or fp32.
// Throws UsageError for non-positive options.
double measure_conv_gflops(bool bf16, const ConvPeakOptions& options = {});

// fp32 always; bf16 only where native_bf16_convs().
ConvPeak measure_conv_peak(const ConvPeakOptions& options = {});

// $XDG_CACHE_HOME/ganlite/conv_peak.json, else $HOME/.cache/ganlite/conv_peak.json; empty when
// neither variable is set.
std::filesystem::path default_conv_peak_cache();

// The entry for `key` in the cache file, nullopt when the file or the entry does not exist.
// Throws Error naming the file when it is not a valid cache file.
std::optional<ConvPeak> read_cached_conv_peak(const std::filesystem::path& file, const ConvPeakKey& key);

// Adds or replaces the entry for peak.key, keeping the other entries; written atomically, folders
// created. With `discard_invalid` an unreadable file is replaced instead of refused. Throws Error
// naming the file when it cannot be read (and is not discarded) or written.
void store_conv_peak(const std::filesystem::path& file, const ConvPeak& peak, bool discard_invalid = false);

struct ConvPeakLookup {
  ConvPeak peak;
  bool from_cache = false;
};

// The cached figure for the current key, or a fresh measurement stored in `file`. `remeasure`
// measures even when an entry exists (and replaces an invalid file); an empty `file` only measures.
ConvPeakLookup conv_peak(const std::filesystem::path& file, bool remeasure, const ConvPeakOptions& options = {});

}  // namespace ganlite::metrics
