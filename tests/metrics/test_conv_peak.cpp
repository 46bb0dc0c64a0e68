// The conv peak microbenchmark and its cache (metrics/conv_peak.h). No timing thresholds: a
// measured figure only has to be a positive finite number.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "ganlite/metrics/conv_peak.h"
#include "ganlite/nn/inference.h"
#include "ganlite/util/error.h"
#include "test_support.h"

namespace metrics = ganlite::metrics;
using ganlite::testing::read_text_file;
using ganlite::testing::TempDir;
using ganlite::testing::write_text_file;

namespace {

// A tiny conv, timed briefly: the figure's value does not matter here.
metrics::ConvPeakOptions quick() {
  metrics::ConvPeakOptions o;
  o.seconds = 0.01;
  o.channels = 32;
  o.side = 16;
  return o;
}

metrics::ConvPeak entry(const std::string& cpu, int threads, double fp32, std::optional<double> bf16) {
  metrics::ConvPeak p;
  p.key.cpu_model = cpu;
  p.key.threads = threads;
  p.key.libtorch = "1.13.0";
  p.fp32_gflops = fp32;
  p.bf16_gflops = bf16;
  return p;
}

bool positive_finite(double v) { return std::isfinite(v) && v > 0; }

// Sets an environment variable for the scope, restoring the old value.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

}  // namespace

TEST(ConvPeak, MeasuresAPositiveFiniteFigure) {
  EXPECT_TRUE(positive_finite(metrics::measure_conv_gflops(false, quick())));
  const auto peak = metrics::measure_conv_peak(quick());
  EXPECT_TRUE(positive_finite(peak.fp32_gflops));
  // bf16 is measured exactly where the CPU has it natively and the oneDNN ISA limit keeps it.
  EXPECT_EQ(peak.bf16_gflops.has_value(), metrics::native_bf16_convs());
  if (peak.bf16_gflops) {
    EXPECT_TRUE(positive_finite(*peak.bf16_gflops));
  }
  EXPECT_EQ(peak.key, metrics::current_conv_peak_key());
  EXPECT_EQ(peak.key.threads, at::get_num_threads());
  EXPECT_FALSE(peak.key.cpu_model.empty());
  auto bad = quick();
  bad.seconds = 0;
  EXPECT_THROW(metrics::measure_conv_gflops(false, bad), ganlite::UsageError);
}

TEST(ConvPeak, CacheRoundTripsKeyedByCpuModelAndThreads) {
  TempDir dir;
  const auto file = dir / "nested" / "conv_peak.json";
  EXPECT_FALSE(metrics::read_cached_conv_peak(file, entry("CPU X", 2, 1, 1).key).has_value());  // no file yet
  metrics::store_conv_peak(file, entry("CPU X", 2, 223.5, 427.25));
  metrics::store_conv_peak(file, entry("CPU X", 1, 111.0, std::nullopt));
  metrics::store_conv_peak(file, entry("CPU Y", 2, 50.0, std::nullopt));
  const auto x2 = metrics::read_cached_conv_peak(file, entry("CPU X", 2, 0, {}).key);
  ASSERT_TRUE(x2.has_value());
  EXPECT_EQ(x2->fp32_gflops, 223.5);
  EXPECT_EQ(x2->bf16_gflops, std::optional<double>(427.25));
  const auto x1 = metrics::read_cached_conv_peak(file, entry("CPU X", 1, 0, {}).key);
  ASSERT_TRUE(x1.has_value());
  EXPECT_EQ(x1->fp32_gflops, 111.0);
  EXPECT_FALSE(x1->bf16_gflops.has_value());  // "unavailable" round-trips as null
  EXPECT_EQ(metrics::read_cached_conv_peak(file, entry("CPU Y", 2, 0, {}).key)->fp32_gflops, 50.0);
  EXPECT_FALSE(metrics::read_cached_conv_peak(file, entry("CPU X", 4, 0, {}).key).has_value());
  EXPECT_FALSE(metrics::read_cached_conv_peak(file, entry("CPU Z", 2, 0, {}).key).has_value());
  auto other_torch = entry("CPU X", 2, 0, {}).key;
  other_torch.libtorch = "2.1.0";
  EXPECT_FALSE(metrics::read_cached_conv_peak(file, other_torch).has_value());

  // Storing a key again replaces its entry and keeps the others.
  metrics::store_conv_peak(file, entry("CPU X", 2, 230.0, 430.0));
  EXPECT_EQ(metrics::read_cached_conv_peak(file, entry("CPU X", 2, 0, {}).key)->fp32_gflops, 230.0);
  const auto doc = nlohmann::json::parse(read_text_file(file));
  EXPECT_EQ(doc["entries"].size(), 3u);
  EXPECT_EQ(doc["format"], "ganlite-conv-peak");
}

TEST(ConvPeak, LookupUsesTheCacheUnlessRemeasuring) {
  TempDir dir;
  const auto file = dir / "conv_peak.json";
  const auto first = metrics::conv_peak(file, false, quick());  // measured, then stored
  EXPECT_FALSE(first.from_cache);
  EXPECT_TRUE(positive_finite(first.peak.fp32_gflops));
  // A stored figure no measurement would give tells the cache was read.
  auto planted = first.peak;
  planted.fp32_gflops = 12345.5;
  metrics::store_conv_peak(file, planted);
  const auto cached = metrics::conv_peak(file, false, quick());
  EXPECT_TRUE(cached.from_cache);
  EXPECT_EQ(cached.peak.fp32_gflops, 12345.5);
  const auto fresh = metrics::conv_peak(file, true, quick());
  EXPECT_FALSE(fresh.from_cache);
  EXPECT_EQ(metrics::read_cached_conv_peak(file, fresh.peak.key)->fp32_gflops, fresh.peak.fp32_gflops);
  // No file: measured, nothing written.
  const auto uncached = metrics::conv_peak({}, false, quick());
  EXPECT_FALSE(uncached.from_cache);
}

TEST(ConvPeak, BadCacheFilesAreErrorsNamingTheFile) {
  TempDir dir;
  const auto key = entry("CPU X", 2, 0, {}).key;
  const std::string head = R"({"format": "ganlite-conv-peak", "entries": [{"cpu_model": "CPU X", )";
  const std::vector<std::string> bad{
      "{not json",
      R"({"format": "something else", "entries": []})",
      head + R"("threads": 2}]})",                                    // no figure
      head + R"("threads": 1099511627776, "fp32_gflops": 1}]})",      // 2^40 threads: refused, not narrowed
      head + R"("threads": 2, "fp32_gflops": -3}]})",                 // not a positive figure
      head + R"("threads": 2, "fp32_gflops": 1, "bf16_gflops": "fast"}]})",
  };
  for (size_t i = 0; i < bad.size(); ++i) {
    const auto file = dir / ("bad" + std::to_string(i) + ".json");
    write_text_file(file, bad[i]);
    try {
      metrics::read_cached_conv_peak(file, key);
      ADD_FAILURE() << "accepted: " << bad[i];
    } catch (const ganlite::Error& e) {
      EXPECT_NE(std::string(e.what()).find(file.string()), std::string::npos) << e.what();
    }
    // Storing keeps refusing, unless told to replace the file (--remeasure).
    EXPECT_THROW(metrics::store_conv_peak(file, entry("CPU X", 2, 5, {})), ganlite::Error);
    metrics::store_conv_peak(file, entry("CPU X", 2, 5, {}), true);
    EXPECT_EQ(metrics::read_cached_conv_peak(file, key)->fp32_gflops, 5.0);
  }
  // A cache that cannot be written names the file too.
  write_text_file(dir / "afile", "x");
  const auto unwritable = dir / "afile" / "conv_peak.json";
  try {
    metrics::store_conv_peak(unwritable, entry("CPU X", 2, 5, {}));
    ADD_FAILURE() << "wrote below a file";
  } catch (const ganlite::Error& e) {
    EXPECT_NE(std::string(e.what()).find(unwritable.string()), std::string::npos) << e.what();
  }
}

TEST(ConvPeak, DefaultCacheFollowsXdgThenHome) {
  {
    ScopedEnv xdg("XDG_CACHE_HOME", "/tmp/xdg");
    EXPECT_EQ(metrics::default_conv_peak_cache(), std::filesystem::path("/tmp/xdg/ganlite/conv_peak.json"));
  }
  {
    ScopedEnv xdg("XDG_CACHE_HOME", nullptr);
    ScopedEnv home("HOME", "/home/someone");
    EXPECT_EQ(metrics::default_conv_peak_cache(), std::filesystem::path("/home/someone/.cache/ganlite/conv_peak.json"));
    ScopedEnv no_home("HOME", nullptr);
    EXPECT_TRUE(metrics::default_conv_peak_cache().empty());
  }
}

TEST(ConvPeak, LaneWidthFollowsTheCpuAndTheIsaLimit) {
  EXPECT_EQ(metrics::conv_lane_width_for(true, true, ""), 16);
  EXPECT_EQ(metrics::conv_lane_width_for(true, true, "avx512_core_bf16"), 16);
  EXPECT_EQ(metrics::conv_lane_width_for(true, true, "ALL"), 16);
  EXPECT_EQ(metrics::conv_lane_width_for(true, true, "AVX2"), 8);  // the CI's AVX2-limited run
  EXPECT_EQ(metrics::conv_lane_width_for(false, true, ""), 8);
  EXPECT_EQ(metrics::conv_lane_width_for(false, true, "AVX512_CORE"), 8);  // a limit adds no ISA
  EXPECT_EQ(metrics::conv_lane_width_for(true, true, "SSE41"), 4);
  EXPECT_EQ(metrics::conv_lane_width_for(false, false, ""), 4);
  const int here = metrics::conv_lane_width();
  EXPECT_TRUE(here == 4 || here == 8 || here == 16) << here;
}

TEST(ConvPeak, OneDnnIsaLimits) {
  // No limit, or one at AVX512_CORE or above, lets oneDNN run bf16 convs; native ones need
  // AVX512_CORE_BF16 or above. oneDNN reads the value case-insensitively.
  for (const char* isa : {"", "ALL", "all", "AVX512_CORE_BF16", "avx512_core_amx", "AVX512_CORE_FP16", "AVX10_1_512"}) {
    EXPECT_TRUE(metrics::onednn_isa_allows_bf16(isa)) << isa;
    EXPECT_TRUE(metrics::onednn_isa_allows_native_bf16(isa)) << isa;
  }
  for (const char* isa : {"AVX512_CORE", "avx512_core_vnni"}) {
    EXPECT_TRUE(metrics::onednn_isa_allows_bf16(isa)) << isa;
    EXPECT_FALSE(metrics::onednn_isa_allows_native_bf16(isa)) << isa;
  }
  for (const char* isa : {"AVX2", "avx2", "AVX2_VNNI", "AVX", "SSE41"}) {
    EXPECT_FALSE(metrics::onednn_isa_allows_bf16(isa)) << isa;
    EXPECT_FALSE(metrics::onednn_isa_allows_native_bf16(isa)) << isa;
  }
  {
    ScopedEnv onednn("ONEDNN_MAX_CPU_ISA", nullptr);
    ScopedEnv dnnl("DNNL_MAX_CPU_ISA", "AVX2");
    EXPECT_EQ(metrics::onednn_isa_limit(), "AVX2");
    EXPECT_FALSE(metrics::native_bf16_convs());
    EXPECT_EQ(metrics::current_conv_peak_key().isa_limit, "AVX2");  // a limited run is cached apart
    ScopedEnv onednn_too("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16");
    EXPECT_EQ(metrics::onednn_isa_limit(), "AVX512_CORE_BF16");
  }
}

TEST(ConvPeak, CpuModelFromCpuinfo) {
  EXPECT_EQ(metrics::cpu_model_from_cpuinfo("processor\t: 0\nvendor_id\t: AuthenticAMD\n"
                                            "model name\t: AMD EPYC 9R14 96-Core Processor  \nflags\t\t: fpu\n"
                                            "processor\t: 1\nmodel name\t: AMD EPYC 9R14 96-Core Processor\n"),
            "AMD EPYC 9R14 96-Core Processor");
  EXPECT_EQ(metrics::cpu_model_from_cpuinfo("processor\t: 0\nBogoMIPS\t: 50.00\n\nHardware\t: BCM2835\n"), "BCM2835");
  EXPECT_EQ(metrics::cpu_model_from_cpuinfo("processor\t: 0\nmodel name\t:\n"), "unknown CPU");
  EXPECT_EQ(metrics::cpu_model_from_cpuinfo(""), "unknown CPU");
  EXPECT_FALSE(metrics::cpu_model_name().empty());
}
