#include <gtest/gtest.h>
#include <torch/torch.h>

#include "ganlite/compress/prune.h"
#include "ganlite/nn/generator.h"
#include "ganlite/nn/profiler.h"
#include "ganlite/util/error.h"
#include "test_support.h"

using namespace ganlite;
using compress::PruneOptions;

namespace {

using ganlite::testing::arch_config;

// Gives every scored norm gammas drawn uniformly from (0.05, 1) so thresholds separate channels.
void randomize_gammas(nn::GeneratorImpl& g, uint64_t seed) {
  torch::manual_seed(seed);
  torch::NoGradGuard no_grad;
  for (const auto& n : g.scored_norms()) n.weight().uniform_(0.05, 1.0);
}

// Zeroes gamma and beta of the channels the rule will drop at `threshold` (and the trunk's
// channels in every block-output norm), so those channels carry exact zeros in the teacher:
// then the pruned student must reproduce the teacher's output exactly.
void silence_channels_below(nn::GeneratorImpl& g, double threshold) {
  torch::NoGradGuard no_grad;
  auto params = g.named_parameters();
  torch::Tensor trunk_drop;
  for (const auto& n : g.scored_norms()) {
    auto gamma = n.weight();
    auto drop = gamma.abs() <= threshold;
    auto beta = params[n.name + ".bias"];
    beta.masked_fill_(drop, 0.0);
    gamma.masked_fill_(drop, 0.0);
    // A depthwise branch's second norm follows the first one's channel selection.
    const auto dw = n.name.find(".dw_ops.");
    if (dw != std::string::npos) {
      const auto second = n.name.substr(0, n.name.size() - 4) + ".2.1";
      params[second + ".weight"].masked_fill_(drop, 0.0);
      params[second + ".bias"].masked_fill_(drop, 0.0);
    }
    if (n.role == nn::NormRole::trunk) trunk_drop = drop.clone();
  }
  for (auto& p : params) {
    const auto& key = p.key();
    const bool block_out = key.find(".pw_bn.") != std::string::npos ||
                           (g.config().arch != "inception" && key.rfind("model.", 0) == 0 &&
                            key.find(".conv_block.") != std::string::npos && p.value().dim() == 1 &&
                            p.value().size(0) == trunk_drop.size(0));
    if (block_out && p.value().dim() == 1 && p.value().size(0) == trunk_drop.size(0)) {
      p.value().masked_fill_(trunk_drop, 0.0);
    }
  }
}

}  // namespace

namespace {

// Inception ngf 4 (trunk 16, branches 2 wide) whose norm channel c has gamma (c + 1) / size, so
// exactly floor(size * (1 - t)) channels exceed a threshold t; one branch of block 1 (gamma 0.1)
// lies entirely below 0.5.
nn::Generator ranked_gamma_teacher() {
  auto teacher = nn::make_generator(arch_config("inception", 4, "batch", 3));
  torch::NoGradGuard no_grad;
  for (const auto& n : teacher->scored_norms()) {
    auto w = n.weight();
    w.copy_(torch::arange(1, w.size(0) + 1, torch::kFloat32) / static_cast<float>(w.size(0)));
  }
  teacher->scored_norms()[3 + 6 + 4].weight().fill_(0.1);
  return teacher;
}

}  // namespace

TEST(Prune, KnownGammasGiveExactWidths) {
  auto teacher = ranked_gamma_teacher();
  torch::NoGradGuard no_grad;
  const auto w = compress::widths_at_threshold(*teacher, 0.5, 1);
  EXPECT_EQ(w.stem, 2);    // gammas 0.25 0.5 0.75 1.0 -> 2 above 0.5
  EXPECT_EQ(w.down1, 4);   // 8 channels -> 4
  EXPECT_EQ(w.trunk, 8);   // 16 -> 8
  EXPECT_EQ(w.up1, 4);
  EXPECT_EQ(w.up2, 2);
  ASSERT_EQ(w.blocks.size(), 3u);
  EXPECT_EQ(w.blocks[0], (std::vector<int>{1, 1, 1, 1, 1, 1}));  // gammas 0.5 1.0 -> 1 each
  EXPECT_EQ(w.blocks[1], (std::vector<int>{1, 1, 1, 1, 0, 1}));  // the silenced dw_k3 branch vanishes
  // The lower bound keeps the strongest channels in stem/down/up layers but never in branches.
  const auto floor = compress::widths_at_threshold(*teacher, 0.99, 3);
  EXPECT_EQ(floor.stem, 3);
  EXPECT_EQ(floor.trunk, 3);
  EXPECT_EQ(floor.blocks[0], (std::vector<int>{1, 1, 1, 1, 1, 1}));  // gamma 1.0 > 0.99
  const auto none = compress::widths_at_threshold(*teacher, 1.0, 3);
  EXPECT_EQ(none.blocks[2], (std::vector<int>(6, 0)));  // every block becomes the identity
}

TEST(Prune, LaneRoundingGrowsEachKeptSetByTheNextStrongestChannels) {
  auto teacher = ranked_gamma_teacher();  // its silenced branch stays vanished when rounded
  torch::NoGradGuard no_grad;
  // Exact widths at 0.5 (KnownGammasGiveExactWidths): stem 2, down1 4, trunk 8, up1 4, up2 2, branches 1.
  const auto by3 = compress::widths_at_threshold(*teacher, 0.5, 1, {3, false});
  EXPECT_EQ(by3.stem, 3);
  EXPECT_EQ(by3.down1, 6);
  EXPECT_EQ(by3.trunk, 9);
  EXPECT_EQ(by3.up1, 6);
  EXPECT_EQ(by3.up2, 3);
  EXPECT_EQ(by3.blocks[0], (std::vector<int>(6, 2)));                    // 1 -> 3, capped at the width 2
  EXPECT_EQ(by3.blocks[1], (std::vector<int>{2, 2, 2, 2, 0, 2}));
  const auto by4 = compress::widths_at_threshold(*teacher, 0.5, 1, {4, false});
  EXPECT_EQ(by4.stem, 4);
  EXPECT_EQ(by4.down1, 4);  // already a multiple
  EXPECT_EQ(by4.trunk, 8);
  EXPECT_EQ(compress::widths_at_threshold(*teacher, 0.5, 1, {1, false}), compress::widths_at_threshold(*teacher, 0.5, 1));
  // To the nearer multiple of 3: down where that keeps the floor (1 here; 0 for branches, which vanish).
  const auto near3 = compress::widths_at_threshold(*teacher, 0.5, 1, {3, true});
  EXPECT_EQ(near3.stem, 3);   // 2: down would be 0, below the floor
  EXPECT_EQ(near3.down1, 3);  // 4 -> 3
  EXPECT_EQ(near3.trunk, 9);  // 8 -> 9
  EXPECT_EQ(near3.up2, 3);
  EXPECT_EQ(near3.blocks[0], (std::vector<int>(6, 0)));
  // The channels added are the next by |gamma|: the stem keeps gammas 0.5, 0.75, 1.0 (of 0.25 .. 1.0).
  PruneOptions options;
  options.min_channels = 1;
  options.input_size = 32;
  options.rounding = {3, false};
  const auto result = compress::prune_at_threshold(*teacher, 0.5, options);
  EXPECT_EQ(result.config.widths, by3);
  const auto stem = result.student->scored_norms()[0].weight();
  EXPECT_TRUE(torch::equal(stem, torch::tensor({0.5f, 0.75f, 1.0f}))) << stem;
}

TEST(Prune, ThresholdZeroReproducesTheTeacher) {
  for (const auto& norm : {"batch", "instance_affine"}) {
    for (const auto& arch : {"resnet", "mobile_resnet", "inception"}) {
      auto teacher = nn::make_generator(arch_config(arch, 8, norm, 3));
      randomize_gammas(*teacher, 1);
      teacher->eval();
      PruneOptions options;
      options.min_channels = 1;
      options.input_size = 32;
      const auto result = compress::prune_at_threshold(*teacher, 0.0, options);
      EXPECT_EQ(result.macs_after, result.macs_before) << arch;
      torch::manual_seed(2);
      const auto x = torch::randn({2, 3, 32, 32});
      torch::NoGradGuard no_grad;
      EXPECT_TRUE(torch::equal(teacher->forward(x), result.student->forward(x))) << arch << " " << norm;
    }
  }
}

TEST(Prune, InheritedWeightsAreTheTeachersSurvivingChannels) {
  for (const auto& arch : {"resnet", "mobile_resnet", "inception"}) {
    auto teacher = nn::make_generator(arch_config(arch, 8, "batch", 3));
    randomize_gammas(*teacher, 3);
    const double threshold = 0.45;
    silence_channels_below(*teacher, threshold);
    teacher->eval();
    {
      // Nonzero running statistics so the eval-mode BatchNorm is not a plain identity.
      torch::NoGradGuard no_grad;
      for (auto& b : teacher->named_buffers()) {
        if (b.key().find("running_mean") != std::string::npos) b.value().uniform_(-0.2, 0.2);
        if (b.key().find("running_var") != std::string::npos) b.value().uniform_(0.5, 1.5);
      }
    }
    PruneOptions options;
    options.min_channels = 1;
    options.input_size = 32;
    const auto result = compress::prune_at_threshold(*teacher, threshold, options);
    EXPECT_LT(result.macs_after, result.macs_before / 2) << arch;
    // In float64 the only difference left is summation order over the dropped (zero) channels.
    teacher->to(torch::kFloat64);
    result.student->to(torch::kFloat64);
    torch::manual_seed(4);
    const auto x = torch::randn({2, 3, 32, 32}, torch::kFloat64);
    torch::NoGradGuard no_grad;
    const auto diff = (teacher->forward(x) - result.student->forward(x)).abs().max().item<double>();
    EXPECT_LT(diff, 1e-12) << arch;
  }
}

TEST(Prune, MeetsTheBudgetWithinThreePercentAt256) {
  struct Case {
    std::string arch;
    int ngf;
    double budget;
  };
  for (const auto& c : std::vector<Case>{{"resnet", 64, 5.0e9}, {"inception", 64, 2.6e9}, {"mobile_resnet", 32, 1.0e9}}) {
    auto teacher = nn::make_generator(arch_config(c.arch, c.ngf, c.arch == "inception" ? "instance_affine" : "batch"));
    randomize_gammas(*teacher, 5);
    PruneOptions options;
    options.target_macs = c.budget;
    options.inherit_weights = false;
    const auto result = compress::prune_to_mac_budget(*teacher, options);
    // The budget bounds the MACs as CAT's search counts them (BatchNorm left out).
    EXPECT_LE(static_cast<double>(result.search_macs), c.budget) << c.arch;
    EXPECT_GE(static_cast<double>(result.search_macs), 0.97 * c.budget) << c.arch;
    // The reported figure is the profiler's at full size (methods.md section 5).
    EXPECT_EQ(result.macs_after, nn::profile_generator(result.config, 256).macs) << c.arch;
    EXPECT_EQ(result.search_macs,
              nn::profile_generator(result.config, 256, torch::kCPU, nn::MacRules::cat_search()).macs)
        << c.arch;
  }
}

TEST(Prune, RefusesTeachersWithoutScalesAndImpossibleBudgets) {
  auto plain = nn::make_generator(arch_config("resnet", 8, "instance", 3));
  PruneOptions options;
  options.target_macs = 1e8;
  try {
    compress::prune_to_mac_budget(*plain, options);
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("instance_affine"), std::string::npos) << e.what();
  }
  auto teacher = nn::make_generator(arch_config("inception", 16, "batch", 3));
  randomize_gammas(*teacher, 6);
  options.target_macs = 1e6;  // below the 16-channel stem/down/up floor
  try {
    compress::prune_to_mac_budget(*teacher, options);
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("smallest network"), std::string::npos) << e.what();
  }
  auto unet = nn::make_generator([] {
    auto c = arch_config("unet", 8, "batch");
    c.num_downs = 5;
    return c;
  }());
  EXPECT_THROW(compress::prune_to_mac_budget(*unet, options), UsageError);
}

TEST(Prune, BudgetAboveTheTeacherKeepsEverything) {
  auto teacher = nn::make_generator(arch_config("resnet", 8, "batch", 3));
  randomize_gammas(*teacher, 7);
  PruneOptions options;
  options.target_macs = 1e12;
  options.input_size = 64;
  const auto result = compress::prune_to_mac_budget(*teacher, options);
  EXPECT_EQ(result.macs_after, result.macs_before);
  EXPECT_EQ(result.config.widths, teacher->config().with_resolved_widths().widths);
}

// CAT's profiler (utils/model_profiling.py) gives BatchNorm2d with running stats 0 MACs; the
// affine InstanceNorm of CycleGAN teachers still counts its output elements.
TEST(Prune, SearchCountingLeavesOnlyBatchNormOut) {
  for (const auto& norm : {"batch", "instance_affine"}) {
    const auto cfg = arch_config("resnet", 8, norm, 3);
    const auto full = nn::profile_generator(cfg, 32);
    int64_t norm_elements = 0;
    for (const auto& l : full.layers) {
      if (l.type == "BatchNorm2d" || l.type == "InstanceNorm2d") norm_elements += l.macs;
    }
    ASSERT_GT(norm_elements, 0) << norm;
    const int64_t search = compress::count_generator_macs(cfg, 32, nn::MacRules::cat_search());
    EXPECT_EQ(search, full.macs - (std::string(norm) == "batch" ? norm_elements : 0)) << norm;
  }
}

// A budget equal to the BatchNorm-free MACs of the network at |gamma| threshold 0.5: CAT's rule
// picks exactly that network, whose MACs with BatchNorm counted exceed the budget. Counting
// BatchNorm in the search (ganlite before issue 15) picks a smaller network instead.
TEST(Prune, SearchLeavesBatchNormOutAsCATDoes) {
  auto teacher = nn::make_generator(arch_config("resnet", 8, "batch", 3));
  torch::NoGradGuard no_grad;
  for (const auto& n : teacher->scored_norms()) {
    auto w = n.weight();  // gammas k / size: the nearest one above 0.5 is 17/32, far beyond 1e-3
    w.copy_(torch::arange(1, w.size(0) + 1, torch::kFloat32) / static_cast<float>(w.size(0)));
  }
  PruneOptions options;
  options.min_channels = 1;
  options.input_size = 32;
  options.inherit_weights = false;
  nn::ArchConfig at_half = teacher->config();
  at_half.widths = compress::widths_at_threshold(*teacher, 0.5, 1);
  const int64_t budget = compress::count_generator_macs(at_half, 32, nn::MacRules::cat_search());
  options.target_macs = static_cast<double>(budget);

  const auto result = compress::prune_to_mac_budget(*teacher, options);
  EXPECT_EQ(result.config.widths, at_half.widths);
  EXPECT_EQ(result.search_macs, budget);
  EXPECT_GT(result.macs_after, budget);  // BatchNorm counted in the report
  EXPECT_EQ(result.macs_after, nn::profile_generator(at_half, 32).macs);
  EXPECT_GE(result.threshold, 0.5);
  EXPECT_LE(result.threshold, 0.5 * (1 + 2e-3));
}

// CAT's stop rule (utils/common.py, shrink_model) by hand on [1, 2] with MACs 200 below 1.3 and
// 100 from 1.3 on, target 150. Midpoints: 1.5 met, 1.25 over, 1.375 met, 1.3125 met, 1.28125 over,
// 1.296875 over, 1.3046875 met, 1.30078125 met, 1.298828125 over, 1.2998046875 over: now
// hi - lo = 2^-10 <= 1e-3 * lo, but the last midpoint was over, so CAT goes on: 1.30029296875 met,
// stop after 11 steps. (Stopping as soon as the interval is small gives 1.30078125 after 10.)
TEST(Prune, SearchStopsOnlyWhenTheIntervalIsSmallAndTheLastProbeMetTheBudget) {
  int calls = 0;
  auto macs_at = [&](double t) {
    ++calls;
    return t < 1.3 ? int64_t{200} : int64_t{100};
  };
  const auto s = compress::search_threshold(1.0f, 2.0f, 150.0, macs_at);
  EXPECT_EQ(s.steps, 11);
  EXPECT_EQ(calls, 11);
  EXPECT_EQ(s.threshold, 1.30029296875);  // dyadic: exact in float32
  EXPECT_EQ(s.macs, 100);
  // All gammas equal (lo == hi): CAT still probes once, at hi.
  const auto one = compress::search_threshold(1.5f, 1.5f, 150.0, macs_at);
  EXPECT_EQ(one.steps, 1);
  EXPECT_EQ(one.threshold, 1.5);
}
