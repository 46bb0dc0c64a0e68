// Pruning to a latency budget (compress/latency_budget.h): the search and the calibration loop run
// on a fake, deterministic machine (an injected table and timing); nothing here is timed except the
// cache test's tiny convs, whose figures it never checks.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "ganlite/compress/latency_budget.h"
#include "ganlite/compress/prune.h"
#include "ganlite/nn/generator.h"
#include "ganlite/nn/profiler.h"
#include "ganlite/util/error.h"
#include "test_support.h"

using namespace ganlite;
using compress::ConvShape;

namespace {

using ganlite::testing::arch_config;

int64_t shape_macs(const ConvShape& s) {
  return s.out_h * s.out_w * s.out * (s.in / s.groups) * s.kernel * s.kernel;
}

// An inception BatchNorm teacher (3 blocks) whose scored gammas are uniform in (0.05, 1), drawn
// from the caller's seed.
nn::Generator inception_teacher(int ngf) {
  auto teacher = nn::make_generator(arch_config("inception", ngf, "batch", 3));
  torch::NoGradGuard no_grad;
  for (const auto& n : teacher->scored_norms()) n.weight().uniform_(0.05, 1.0);
  return teacher;
}

// A machine whose convs take 1 ms per 10M MACs plus 0.01 ms each.
class FakeTable : public compress::LayerLatencyTable {
 public:
  double conv_ms(const ConvShape& s) override {
    ++lookups;
    return 1e-7 * static_cast<double>(shape_macs(s)) + 0.01;
  }
  int lookups = 0;
};

}  // namespace

TEST(LatencyBudget, SearchFindsTheLargestStudentUnderTheTarget) {
  auto linear = [](double t) { return 100.0 - 50.0 * t; };  // non-increasing in the threshold
  const auto r = compress::search_latency_threshold(0.0, 1.0, 60.0, linear);
  EXPECT_LE(r.predicted_ms, 60.0);
  EXPECT_NEAR(r.threshold, 0.8, 2e-3);
  EXPECT_DOUBLE_EQ(r.predicted_ms, linear(r.threshold));
  // A step function: the first threshold at which it meets the target, found within tolerance.
  auto steps = [](double t) { return t < 0.3 ? 10.0 : t < 0.6 ? 7.0 : 3.0; };
  EXPECT_NEAR(compress::search_latency_threshold(0.0, 1.0, 8.0, steps).threshold, 0.3, 1e-3);
  EXPECT_EQ(compress::search_latency_threshold(0.0, 1.0, 20.0, steps).threshold, 0.0);  // all meet it
  const auto none = compress::search_latency_threshold(0.0, 1.0, 1.0, steps);           // none meets it
  EXPECT_EQ(none.threshold, 1.0);
  EXPECT_EQ(none.predicted_ms, 3.0);
}

TEST(LatencyBudget, GeneratorConvsAreEveryConvOfTheNetwork) {
  // Non-affine norms count no MACs: the convs' MACs must add up to the profiler's count exactly.
  for (const std::string arch : {"inception", "resnet", "mobile_resnet"}) {
    const auto c = arch_config(arch, 8, "instance", 3);
    const auto convs = compress::generator_convs(c, 128);
    ASSERT_FALSE(convs.empty()) << arch;
    int64_t macs = 0;
    for (const auto& s : convs) {
      EXPECT_GT(s.in, 0);
      EXPECT_GT(s.out, 0);
      macs += shape_macs(s);
    }
    EXPECT_EQ(macs, compress::count_generator_macs(c, 128)) << arch;
    EXPECT_EQ(convs.front().out_h, 128) << arch;  // the stem at full size, scaled from the profile's
    EXPECT_TRUE(std::any_of(convs.begin(), convs.end(), [](const ConvShape& s) { return s.transposed; })) << arch;
  }
}

TEST(LatencyBudget, CalibratesOnTheTimedStudentAndLandsInTheWindow) {
  torch::manual_seed(3);
  auto teacher = inception_teacher(16);
  FakeTable table;
  const int64_t size = 64;
  // The fake machine runs 1.3x the table's sum plus 0.05 ms (what the table leaves out).
  int timed = 0;
  auto measure = [&](nn::GeneratorImpl& student) {
    ++timed;
    return 1.3 * compress::table_latency_ms(compress::generator_convs(student.config(), size), table) + 0.05;
  };
  const double teacher_ms = measure(*teacher);
  compress::LatencyBudgetOptions options;
  options.target_ms = teacher_ms / 5;
  options.prune.input_size = size;
  options.prune.min_channels = 4;
  timed = 0;
  const auto r = compress::prune_to_latency_budget(*teacher, options, table, measure);
  EXPECT_TRUE(r.met) << r.measured_ms << " ms for a budget of " << options.target_ms;
  EXPECT_LE(r.measured_ms, options.target_ms);
  EXPECT_GE(r.measured_ms, 0.9 * options.target_ms);
  // The uncalibrated first guess is too slow on this machine; the second round corrects it.
  ASSERT_GE(r.rounds.size(), 2u);
  EXPECT_GT(r.rounds[0].measured_ms, options.target_ms);
  EXPECT_NEAR(r.rounds[0].calibration, r.rounds[0].measured_ms / (r.rounds[0].predicted_ms), 1e-9);
  EXPECT_EQ(static_cast<size_t>(timed), r.rounds.size());
  EXPECT_LE(r.rounds.size(), static_cast<size_t>(options.max_rounds));
  // What is reported is the chosen student's: its measurement and its widths.
  EXPECT_DOUBLE_EQ(r.measured_ms, measure(*r.prune.student));
  EXPECT_EQ(r.prune.config.widths, compress::widths_at_threshold(*teacher, r.prune.threshold, 4));
  EXPECT_NEAR(r.table_ms * 1.3 + 0.05, r.measured_ms, 1e-9);
}

TEST(LatencyBudget, KeepsTheBestStudentWhenNoneLandsInTheWindow) {
  torch::manual_seed(4);
  auto teacher = inception_teacher(8);
  FakeTable table;
  // A budget below the most pruned student: the fastest is kept and reported as missed.
  compress::LatencyBudgetOptions options;
  options.target_ms = 1e-6;
  options.prune.input_size = 32;
  auto measure = [&](nn::GeneratorImpl& s) { return compress::table_latency_ms(compress::generator_convs(s.config(), 32), table); };
  const auto r = compress::prune_to_latency_budget(*teacher, options, table, measure);
  EXPECT_FALSE(r.met);
  for (const auto& round : r.rounds) EXPECT_LE(r.measured_ms, round.measured_ms);
  options.target_ms = 0;
  EXPECT_THROW(compress::prune_to_latency_budget(*teacher, options, table, measure), UsageError);
}

TEST(LatencyBudget, TableCacheIsKeyedAndRebuiltWhenStale) {
  const auto dir = std::filesystem::temp_directory_path() / ("ganlite_latency_table_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  const auto file = dir / "latency_table.json";
  const auto key = compress::current_latency_table_key("fp32", 16);
  const ConvShape tiny{4, 4, 3, 1, 1, 8, 8, false};
  double first = 0;
  {
    compress::MeasuredLatencyTable table(key, file);
    first = table.conv_ms(tiny);
    EXPECT_GT(first, 0);
    EXPECT_EQ(table.measured(), 1);
    table.save();
  }
  {
    compress::MeasuredLatencyTable table(key, file);
    EXPECT_EQ(table.cached(), 1);
    EXPECT_EQ(table.conv_ms(tiny), first);  // read back, not timed again
    EXPECT_EQ(table.measured(), 0);
  }
  auto other = key;
  other.threads += 1;
  {
    compress::MeasuredLatencyTable table(other, file);  // another key: nothing cached for it
    EXPECT_EQ(table.cached(), 0);
  }
  {
    compress::MeasuredLatencyTable table(key, file, /*max_age_days=*/-1);  // everything is stale
    EXPECT_EQ(table.cached(), 0);
  }
  std::filesystem::remove_all(dir);
}

TEST(LatencyBudget, ParsesDurations) {
  EXPECT_DOUBLE_EQ(compress::parse_latency_ms("30ms"), 30.0);
  EXPECT_DOUBLE_EQ(compress::parse_latency_ms("0.03s"), 30.0);
  EXPECT_DOUBLE_EQ(compress::parse_latency_ms("12.5"), 12.5);
  for (const std::string bad : {"", "ms", "-3ms", "0", "fast", "3 ms", "nan"}) {
    EXPECT_THROW(compress::parse_latency_ms(bad), UsageError) << bad;
  }
}

namespace {

// A vectorised machine with 4 lanes: a conv costs as if both channel counts were padded to
// multiples of 4, so widths rounded up to 4 cost nothing more than the exact ones.
class LaneTable : public compress::LayerLatencyTable {
 public:
  double conv_ms(const ConvShape& s) override {
    auto pad = [](int64_t c) { return (c + 3) / 4 * 4; };
    const int64_t padded = s.out_h * s.out_w * pad(s.out) * pad(s.in / s.groups) * s.kernel * s.kernel;
    return 1e-7 * static_cast<double>(padded) + 0.01;
  }
};

bool lane_multiple_or_whole(int kept, int whole) { return kept == 0 || kept == whole || kept % 4 == 0; }

}  // namespace

TEST(LatencyBudget, LaneRoundedWidthsAreKeptWhenTheyBuyMoreMacsForTheSameTime) {
  torch::manual_seed(5);
  auto teacher = inception_teacher(16);
  LaneTable table;
  const int64_t size = 64;
  auto measure = [&](nn::GeneratorImpl& s) {
    return compress::table_latency_ms(compress::generator_convs(s.config(), size), table) + 0.05;
  };
  compress::LatencyBudgetOptions options;
  options.target_ms = measure(*teacher) / 5;
  options.prune.input_size = size;
  options.prune.min_channels = 4;
  const auto exact = compress::prune_to_latency_budget(*teacher, options, table, measure);
  EXPECT_EQ(exact.rounding, "exact");
  ASSERT_EQ(exact.families.size(), 1u);
  options.lane_width = 4;
  const auto r = compress::prune_to_latency_budget(*teacher, options, table, measure);
  ASSERT_TRUE(r.met) << r.measured_ms << " ms for a budget of " << options.target_ms;
  ASSERT_EQ(r.families.size(), 3u);
  EXPECT_EQ(r.families[0].first, "exact");
  EXPECT_EQ(r.families[0].second.macs, exact.prune.macs_after);
  // Rounding up costs nothing on this machine at a given threshold and adds channels: a rounded
  // family wins, and the kept student has the most MACs of the families in the window.
  EXPECT_NE(r.rounding, "exact");
  EXPECT_GT(r.prune.macs_after, exact.prune.macs_after);
  EXPECT_LE(r.measured_ms, options.target_ms);
  for (const auto& [name, best] : r.families) {
    if (best.measured_ms <= options.target_ms && best.measured_ms >= 0.9 * options.target_ms) {
      EXPECT_LE(best.macs, r.prune.macs_after) << name;
    }
  }
  const auto whole = teacher->config().with_resolved_widths().widths;
  const auto& w = r.prune.config.widths;
  EXPECT_TRUE(lane_multiple_or_whole(w.stem, whole.stem) && lane_multiple_or_whole(w.down1, whole.down1) &&
              lane_multiple_or_whole(w.trunk, whole.trunk) && lane_multiple_or_whole(w.up1, whole.up1) &&
              lane_multiple_or_whole(w.up2, whole.up2));
  for (size_t b = 0; b < w.blocks.size(); ++b) {
    for (size_t i = 0; i < w.blocks[b].size(); ++i) {
      EXPECT_TRUE(lane_multiple_or_whole(w.blocks[b][i], whole.blocks[b][i])) << b << " " << i;
    }
  }
  EXPECT_EQ(w, compress::widths_at_threshold(*teacher, r.prune.threshold, 4, {4, r.rounding == "nearest"}));
}
