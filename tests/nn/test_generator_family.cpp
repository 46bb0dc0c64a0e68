// The generator registry (nn/generator_family.h): every registered family builds, its facts agree
// with the module it builds, and unknown names list the registered ones.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>

#include "ganlite/nn/generator.h"
#include "ganlite/nn/generator_family.h"
#include "ganlite/util/error.h"
#include "nn_test_helpers.h"

using namespace ganlite;

namespace {

// A small config of every family: ngf 4, 3 blocks, 5 downs (32x32) where the family uses them.
nn::ArchConfig tiny(const nn::GeneratorFamily& family) {
  nn::ArchConfig c = ganlite::testing::small_config(family.name, 4);
  c.n_blocks = 3;
  c.num_downs = 5;
  return c;
}

int64_t built_conv_weights(const torch::nn::Module& g) {
  int64_t n = 0;
  for (const auto& p : g.named_parameters(true)) {
    if (p.value().dim() == 4) n += p.value().numel();
  }
  return n;
}

// True when the generator maps a side x side input to an output of the same side.
bool keeps_side(nn::GeneratorImpl& g, int64_t side) {
  try {
    const auto y = g.forward(torch::zeros({1, g.config().input_nc, side, side}));
    return y.size(2) == side && y.size(3) == side;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace

TEST(GeneratorFamily, RegistryListsTheFamiliesInTheirDocumentedOrder) {
  EXPECT_EQ(nn::generator_family_names(), (std::vector<std::string>{"resnet", "unet", "mobile_resnet", "inception",
                                                                    "spade", "inception_spade"}));
  EXPECT_EQ(nn::valid_archs(), nn::generator_family_names());
  EXPECT_EQ(nn::prunable_generator_families(),
            (std::vector<std::string>{"resnet", "mobile_resnet", "inception", "inception_spade"}));
}

TEST(GeneratorFamily, EveryFamilyBuildsWhatItsConfigSays) {
  for (const auto& family : nn::generator_families()) {
    SCOPED_TRACE(family.name);
    const nn::ArchConfig c = tiny(family);
    const auto g = nn::make_generator(c);
    EXPECT_EQ(g->config(), c);
    EXPECT_FALSE(family.description.empty());
    EXPECT_FALSE(family.taps.empty());
    EXPECT_EQ(g->tap_names().size(), 4u);
    EXPECT_EQ(c.conv_weight_count(), built_conv_weights(*g));
    EXPECT_NE(nn::describe_generator(c).find(family.name + " ngf 4"), std::string::npos) << nn::describe_generator(c);
  }
}

// The multiple is what the forward needs: sides that are multiples keep their size, a side
// between two multiples does not (a shape change or an error).
TEST(GeneratorFamily, SizeMultipleIsWhatTheForwardAccepts) {
  torch::NoGradGuard no_grad;
  for (const auto& family : nn::generator_families()) {
    SCOPED_TRACE(family.name);
    const nn::ArchConfig c = tiny(family);
    auto g = nn::make_generator(c);
    g->eval();
    const int64_t m = nn::size_multiple(c);
    ASSERT_EQ(m, family.size_multiple(c));
    // 4 m: inception's 5x5 reflect-padded branches need a trunk of at least 3 pixels.
    EXPECT_TRUE(keeps_side(*g, 4 * m));
    EXPECT_TRUE(keeps_side(*g, 5 * m));
    EXPECT_FALSE(keeps_side(*g, 4 * m + m / 2));
  }
}

TEST(GeneratorFamily, WidthsResolveToTheFamilysBlockLayout) {
  for (const auto& family : nn::generator_families()) {
    SCOPED_TRACE(family.name);
    const nn::ArchConfig c = tiny(family);
    const auto resolved = c.with_resolved_widths();
    if (family.widths_per_block == 0) {
      EXPECT_TRUE(resolved.widths.empty());
      continue;
    }
    const int blocks = family.block_count ? family.block_count(c) : 3;  // spade families: a fixed count
    ASSERT_EQ(resolved.widths.blocks.size(), static_cast<size_t>(blocks));
    for (const auto& block : resolved.widths.blocks) EXPECT_EQ(block.size(), family.widths_per_block);
    // Written-out default widths build the same module as the implicit ones.
    EXPECT_EQ(resolved.conv_weight_count(), c.conv_weight_count());
  }
}

TEST(GeneratorFamily, FamiliesWithoutPruningHooksSaySo) {
  for (const auto& family : nn::generator_families()) {
    SCOPED_TRACE(family.name);
    nn::ArchConfig c = tiny(family);
    c.norm = "batch";
    const auto g = nn::make_generator(c);
    if (family.prune.plan || family.prune.student_config) {
      EXPECT_FALSE(g->scored_norms().empty());
      continue;
    }
    try {
      g->scored_norms();
      FAIL() << "expected a UsageError";
    } catch (const UsageError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find(family.name), std::string::npos) << m;
      for (const auto& name : nn::prunable_generator_families()) EXPECT_NE(m.find(name), std::string::npos) << m;
    }
  }
}

TEST(GeneratorFamily, UnknownNameListsTheValidOnesInOrder) {
  EXPECT_EQ(nn::find_generator_family("resnett"), nullptr);
  try {
    nn::generator_family("resnett");
    FAIL() << "expected a UsageError";
  } catch (const UsageError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("resnett"), std::string::npos) << m;
    EXPECT_NE(m.find("resnet, unet, mobile_resnet, inception"), std::string::npos) << m;
  }
}
