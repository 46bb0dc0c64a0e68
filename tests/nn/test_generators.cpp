#include <gtest/gtest.h>
#include <torch/torch.h>

#include "ganlite/nn/generator.h"
#include "ganlite/nn/inception_generator.h"
#include "ganlite/nn/layers.h"
#include "ganlite/nn/mobile_resnet_generator.h"
#include "ganlite/nn/resnet_generator.h"
#include "ganlite/nn/unet_generator.h"
#include "ganlite/util/error.h"
#include "nn_test_helpers.h"
#include "test_support.h"

using namespace ganlite;
using ganlite::testing::find_tensor;
using ganlite::testing::small_config;
using ganlite::testing::state_dict_lines;

namespace {

std::vector<std::string> fixture_lines(const std::string& name) {
  return ganlite::testing::split_lines(ganlite::testing::read_text_file(std::string(GANLITE_FIXTURES_DIR) + "/nn/" + name));
}

using ganlite::testing::shape_of;

void expect_same_keys(const torch::nn::Module& model, const std::string& fixture) {
  const auto expected = fixture_lines(fixture);
  const auto actual = state_dict_lines(model);
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < std::min(actual.size(), expected.size()); ++i) {
    ASSERT_EQ(actual[i], expected[i]) << "entry " << i << " of " << fixture;
  }
}

nn::ArchConfig pruned_resnet_like(const std::string& arch) {
  nn::ArchConfig c = small_config(arch);
  c.n_blocks = 3;
  c.widths.stem = 5;
  c.widths.down1 = 7;
  c.widths.trunk = 12;
  c.widths.up1 = 6;
  c.widths.up2 = 4;
  c.widths.blocks = {{3}, {9}, {1}};
  return c;
}

}  // namespace

TEST(Generators, ResnetKeysMatchPublicCode) {
  nn::ArchConfig c;  // resnet, ngf 64, 9 blocks, instance norm, reflect, no dropout
  expect_same_keys(*nn::make_generator(c), "resnet9_ngf64_keys.txt");
}

TEST(Generators, MobileResnetKeysMatchPublicCode) {
  expect_same_keys(*nn::make_generator(small_config("mobile_resnet", 16)), "mobile_resnet9_ngf16_keys.txt");
}

TEST(Generators, InceptionKeysMatchPublicCode) {
  nn::ArchConfig c = small_config("inception", 64);
  c.norm = "instance_affine";
  expect_same_keys(*nn::make_generator(c), "inception9_ngf64_affine_keys.txt");
}

TEST(Generators, OutputShapesAndRange) {
  torch::manual_seed(0);
  for (const std::string arch : {"resnet", "mobile_resnet", "inception"}) {
    auto g = nn::make_generator(small_config(arch));
    auto y = g->forward(torch::randn({2, 3, 32, 32}));
    EXPECT_EQ(shape_of(y), (std::vector<int64_t>{2, 3, 32, 32})) << arch;
    EXPECT_LE(y.abs().max().item<float>(), 1.0f) << arch;  // Tanh output
  }
}

TEST(Generators, ResnetDropoutAndZeroPaddingShiftIndicesAsPublicCode) {
  nn::ArchConfig c = small_config("resnet");
  c.dropout = 0.5;
  auto g = nn::make_generator(c);
  EXPECT_TRUE(find_tensor(*g, "model.10.conv_block.6.weight").defined());
  EXPECT_FALSE(find_tensor(*g, "model.10.conv_block.5.weight").defined());

  c.dropout = 0.0;
  c.padding = "zero";
  g = nn::make_generator(c);
  EXPECT_EQ(shape_of(find_tensor(*g, "model.10.conv_block.0.weight")), (std::vector<int64_t>{32, 32, 3, 3}));
  EXPECT_EQ(shape_of(find_tensor(*g, "model.10.conv_block.3.weight")), (std::vector<int64_t>{32, 32, 3, 3}));
  EXPECT_EQ(shape_of(g->forward(torch::zeros({1, 3, 16, 16}))), (std::vector<int64_t>{1, 3, 16, 16}));

  c.padding = "replicate";
  EXPECT_EQ(shape_of(nn::make_generator(c)->forward(torch::zeros({1, 3, 16, 16}))),
            (std::vector<int64_t>{1, 3, 16, 16}));
}

TEST(Generators, BiasFollowsThePublicUseBiasRule) {
  for (const std::string norm : {"instance", "instance_affine", "batch", "none"}) {
    nn::ArchConfig c = small_config("resnet");
    c.norm = norm;
    auto g = nn::make_generator(c);
    const bool expect_bias = norm == "instance" || norm == "instance_affine";
    EXPECT_EQ(find_tensor(*g, "model.1.bias").defined(), expect_bias) << norm;
    EXPECT_TRUE(find_tensor(*g, "model.26.bias").defined()) << norm;  // the output conv always has one
    EXPECT_EQ(find_tensor(*g, "model.2.running_mean").defined(), norm == "batch") << norm;
    EXPECT_EQ(find_tensor(*g, "model.2.weight").defined(), norm == "batch" || norm == "instance_affine") << norm;
  }
}

TEST(Generators, PrunedResnetAndMobileBuildWithTheirWidths) {
  for (const std::string arch : {"resnet", "mobile_resnet"}) {
    auto g = nn::make_generator(pruned_resnet_like(arch));
    EXPECT_EQ(shape_of(find_tensor(*g, "model.1.weight")), (std::vector<int64_t>{5, 3, 7, 7})) << arch;
    EXPECT_EQ(shape_of(find_tensor(*g, "model.7.weight")), (std::vector<int64_t>{12, 7, 3, 3})) << arch;
    EXPECT_EQ(shape_of(find_tensor(*g, "model.13.weight")), (std::vector<int64_t>{12, 6, 3, 3})) << arch;
    EXPECT_EQ(shape_of(find_tensor(*g, "model.20.weight")), (std::vector<int64_t>{3, 4, 7, 7})) << arch;
    const auto out = g->forward_with_taps(torch::randn({2, 3, 32, 32}));
    EXPECT_EQ(shape_of(out.image), (std::vector<int64_t>{2, 3, 32, 32})) << arch;
    ASSERT_EQ(out.taps.size(), 4u);
    for (const auto& t : out.taps) EXPECT_EQ(shape_of(t), (std::vector<int64_t>{2, 12, 8, 8})) << arch;
  }
  auto r = nn::make_generator(pruned_resnet_like("resnet"));
  EXPECT_EQ(shape_of(find_tensor(*r, "model.11.conv_block.1.weight")), (std::vector<int64_t>{9, 12, 3, 3}));
  EXPECT_EQ(shape_of(find_tensor(*r, "model.11.conv_block.5.weight")), (std::vector<int64_t>{12, 9, 3, 3}));
  auto m = nn::make_generator(pruned_resnet_like("mobile_resnet"));
  EXPECT_EQ(shape_of(find_tensor(*m, "model.11.conv_block.1.conv.0.weight")), (std::vector<int64_t>{12, 1, 3, 3}));
  EXPECT_EQ(shape_of(find_tensor(*m, "model.11.conv_block.1.conv.2.weight")), (std::vector<int64_t>{9, 12, 1, 1}));
  EXPECT_EQ(shape_of(find_tensor(*m, "model.11.conv_block.6.conv.0.weight")), (std::vector<int64_t>{9, 1, 3, 3}));
  EXPECT_EQ(shape_of(find_tensor(*m, "model.11.conv_block.6.conv.2.weight")), (std::vector<int64_t>{12, 9, 1, 1}));
}

TEST(Generators, ResnetTapsAndScoredNorms) {
  nn::ArchConfig c = small_config("resnet");
  c.norm = "instance_affine";
  auto g = nn::make_generator(c);
  g->eval();
  const auto x = torch::randn({1, 3, 32, 32});
  const auto out = g->forward_with_taps(x);
  EXPECT_TRUE(torch::allclose(out.image, g->forward(x)));
  ASSERT_EQ(out.taps.size(), 4u);
  for (const auto& t : out.taps) EXPECT_EQ(shape_of(t), (std::vector<int64_t>{1, 32, 8, 8}));
  EXPECT_EQ(g->tap_names(), (std::vector<std::string>{"model.9", "model.12", "model.15", "model.18"}));
  // The first tap is after a ReLU; the others are block outputs (residual sums can be negative).
  EXPECT_GE(out.taps[0].min().item<float>(), 0.0f);

  const auto norms = g->scored_norms();
  ASSERT_EQ(norms.size(), 3u + 9u + 2u);
  EXPECT_EQ(norms[0].name, "model.2");
  EXPECT_EQ(norms[2].name, "model.8");
  EXPECT_EQ(norms[2].role, nn::NormRole::trunk);
  EXPECT_EQ(norms[3].name, "model.10.conv_block.2");
  EXPECT_EQ(norms[3].block, 0);
  EXPECT_EQ(norms[11].name, "model.18.conv_block.2");
  EXPECT_EQ(norms[12].name, "model.20");
  EXPECT_EQ(norms[13].name, "model.23");
  EXPECT_EQ(norms[13].role, nn::NormRole::up2);
  for (const auto& n : norms) {
    // Each scored module is the tensor owner of that state-dict key.
    EXPECT_TRUE(n.weight().is_same(find_tensor(*g, n.name + ".weight"))) << n.name;
  }
}

TEST(Generators, InceptionPrunedBranchesAreAbsentAndIndicesShift) {
  nn::ArchConfig c = small_config("inception");
  c.norm = "instance_affine";
  c.n_blocks = 3;
  c.widths.stem = 8;
  c.widths.down1 = 16;
  c.widths.trunk = 24;
  c.widths.up1 = 16;
  c.widths.up2 = 8;
  c.widths.blocks = {{0, 4, 0, 2, 0, 3}, {0, 0, 0, 0, 0, 0}, {1, 1, 1, 1, 1, 1}};
  auto g = nn::make_generator(c);
  // Block 0: the only res branch is k=3 (now res_ops.0); dw branches k=1 and k=5 are dw_ops.0 and .1.
  EXPECT_EQ(shape_of(find_tensor(*g, "features.0.res_ops.0.1.0.weight")), (std::vector<int64_t>{4, 24, 3, 3}));
  EXPECT_FALSE(find_tensor(*g, "features.0.res_ops.1.1.0.weight").defined());
  EXPECT_EQ(shape_of(find_tensor(*g, "features.0.dw_ops.0.2.0.weight")), (std::vector<int64_t>{2, 1, 1, 1}));
  EXPECT_EQ(shape_of(find_tensor(*g, "features.0.dw_ops.1.2.0.weight")), (std::vector<int64_t>{3, 1, 5, 5}));
  EXPECT_EQ(shape_of(find_tensor(*g, "features.0.dw_ops.1.4.weight")), (std::vector<int64_t>{24, 3, 1, 1}));
  EXPECT_FALSE(find_tensor(*g, "features.0.dw_ops.2.0.0.weight").defined());
  EXPECT_FALSE(find_tensor(*g, "features.1.res_ops.0.1.0.weight").defined());

  const auto norms = g->scored_norms();
  std::vector<std::pair<std::string, int>> block0;
  for (const auto& n : norms) {
    if (n.role == nn::NormRole::block && n.block == 0) block0.emplace_back(n.name, n.slot);
    EXPECT_TRUE(n.weight().is_same(find_tensor(*g, n.name + ".weight"))) << n.name;
  }
  EXPECT_EQ(block0, (std::vector<std::pair<std::string, int>>{
                        {"features.0.res_ops.0.1.1", 1}, {"features.0.dw_ops.0.0.1", 3}, {"features.0.dw_ops.1.0.1", 5}}));
  EXPECT_EQ(norms.front().name, "down_sampling.2");
  EXPECT_EQ(norms[2].name, "down_sampling.8");
  EXPECT_EQ(norms.back().name, "up_sampling.4");
  EXPECT_EQ(norms.size(), 3u + 3u + 0u + 6u + 2u);

  const auto out = g->forward_with_taps(torch::randn({1, 3, 32, 32}));
  EXPECT_EQ(shape_of(out.image), (std::vector<int64_t>{1, 3, 32, 32}));
  ASSERT_EQ(out.taps.size(), 4u);
  for (const auto& t : out.taps) EXPECT_EQ(shape_of(t), (std::vector<int64_t>{1, 24, 8, 8}));
  // Block 1 has no branch: its output is its input.
  EXPECT_TRUE(torch::equal(out.taps[1], out.taps[2]));
  EXPECT_EQ(g->tap_names(),
            (std::vector<std::string>{"down_sampling.9", "features.0", "features.1", "features.2"}));
}

TEST(Generators, InceptionBlockWithoutBranchesIsIdentity) {
  nn::InvertedResidualChannels empty(16, std::vector<int>(6, 0), std::string("reflect"), std::string("instance_affine"), 0.0, true);
  const auto x = torch::randn({1, 16, 6, 6});
  EXPECT_TRUE(torch::equal(empty->forward(x), x));
  nn::InvertedResidualChannels full(16, std::vector<int>(6, 2), std::string("zero"), std::string("batch"), 0.0, false);
  full->eval();
  EXPECT_FALSE(torch::equal(full->forward(x), x));
  EXPECT_EQ(full->res_ops->size(), 3u);
  EXPECT_EQ(full->dw_ops->size(), 3u);
}

TEST(Generators, InceptionDefaultMidWidthIsTrunkOverSix) {
  auto g = nn::make_generator(small_config("inception", 64));
  EXPECT_EQ(shape_of(find_tensor(*g, "features.4.dw_ops.2.2.0.weight")), (std::vector<int64_t>{42, 1, 5, 5}));
  EXPECT_EQ(shape_of(find_tensor(*g, "features.8.res_ops.2.4.weight")), (std::vector<int64_t>{256, 42, 5, 5}));
}

TEST(Generators, UnetShapesKeysAndTaps) {
  for (int num_downs : {7, 8}) {
    nn::ArchConfig c = small_config("unet", 4);
    c.num_downs = num_downs;
    c.norm = "batch";
    auto g = nn::make_generator(c);
    g->eval();
    const int64_t size = num_downs == 8 ? 256 : 128;
    const auto out = g->forward_with_taps(torch::randn({1, 3, size, size}));
    EXPECT_EQ(shape_of(out.image), (std::vector<int64_t>{1, 3, size, size}));
    ASSERT_EQ(out.taps.size(), 4u);
    EXPECT_EQ(shape_of(out.taps[0]), (std::vector<int64_t>{1, 32, 1, 1}));
    EXPECT_EQ(shape_of(out.taps[1]), (std::vector<int64_t>{1, 32, size / 8, size / 8}));
    EXPECT_EQ(shape_of(out.taps[2]), (std::vector<int64_t>{1, 16, size / 4, size / 4}));
    EXPECT_EQ(shape_of(out.taps[3]), (std::vector<int64_t>{1, 8, size / 2, size / 2}));

    // Public keys and nesting; with batch norm the down convs have no bias, the outermost up conv has one.
    EXPECT_EQ(shape_of(find_tensor(*g, "model.model.0.weight")), (std::vector<int64_t>{4, 3, 4, 4}));
    EXPECT_FALSE(find_tensor(*g, "model.model.0.bias").defined());
    EXPECT_EQ(shape_of(find_tensor(*g, "model.model.3.weight")), (std::vector<int64_t>{8, 3, 4, 4}));
    EXPECT_TRUE(find_tensor(*g, "model.model.3.bias").defined());
    EXPECT_EQ(shape_of(find_tensor(*g, "model.model.1.model.1.weight")), (std::vector<int64_t>{8, 4, 4, 4}));
    EXPECT_TRUE(find_tensor(*g, "model.model.1.model.2.running_mean").defined());
    std::string inner = "model.model.1";
    for (int i = 1; i < num_downs - 1; ++i) inner += ".model.3";
    EXPECT_EQ(shape_of(find_tensor(*g, inner + ".model.1.weight")), (std::vector<int64_t>{32, 32, 4, 4}));
    EXPECT_EQ(shape_of(find_tensor(*g, inner + ".model.3.weight")), (std::vector<int64_t>{32, 32, 4, 4}));
    EXPECT_EQ(g->tap_names().front(), inner + ".model.1");
    EXPECT_EQ(g->tap_names()[3], "model.model.1");
  }
}

TEST(Generators, UnetSkipCarriesTheActivatedInputAsThePublicInPlaceReLU) {
  nn::UnetSkipConnectionBlock inner(4, 8, 4, nullptr, nn::UnetSkipConnectionBlockImpl::Kind::innermost, 0, "instance",
                                    0.0);
  const auto x = torch::randn({1, 4, 8, 8});
  const auto y = inner->forward(x);
  EXPECT_EQ(shape_of(y), (std::vector<int64_t>{1, 8, 8, 8}));
  EXPECT_TRUE(torch::allclose(y.slice(1, 0, 4), torch::leaky_relu(x, 0.2)));
}

TEST(Generators, UnetRejectsInputsOfTheWrongSize) {
  nn::ArchConfig c = small_config("unet", 4);
  c.num_downs = 7;
  auto g = nn::make_generator(c);
  try {
    g->forward(torch::zeros({1, 3, 100, 100}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("128"), std::string::npos) << e.what();
  }
  EXPECT_THROW(g->scored_norms(), UsageError);
}

TEST(Generators, BadConfigsNameTheValidValues) {
  auto message = [](nn::ArchConfig c) -> std::string {
    try {
      nn::make_generator(c);
    } catch (const UsageError& e) {
      return e.what();
    }
    return "no UsageError";
  };
  nn::ArchConfig c = small_config("resnett");
  auto m = message(c);
  EXPECT_NE(m.find("resnett"), std::string::npos) << m;
  EXPECT_NE(m.find("mobile_resnet"), std::string::npos) << m;
  c = small_config("resnet");
  c.norm = "layer";
  m = message(c);
  EXPECT_NE(m.find("layer"), std::string::npos) << m;
  EXPECT_NE(m.find("instance_affine"), std::string::npos) << m;
  c = small_config("resnet");
  c.padding = "circular";
  m = message(c);
  EXPECT_NE(m.find("circular"), std::string::npos) << m;
  EXPECT_NE(m.find("replicate"), std::string::npos) << m;
  c = pruned_resnet_like("resnet");
  c.widths.blocks[1] = {0};
  m = message(c);
  EXPECT_NE(m.find("widths.blocks[1]"), std::string::npos) << m;
  c = pruned_resnet_like("inception");
  m = message(c);  // 1 width per block where inception needs 6
  EXPECT_NE(m.find("6"), std::string::npos) << m;
}

TEST(Generators, MakeGeneratorInitialisesLikeThePublicCode) {
  torch::manual_seed(1);
  nn::ArchConfig c = small_config("resnet", 32);
  c.norm = "batch";
  auto g = nn::make_generator(c);
  const auto w = find_tensor(*g, "model.10.conv_block.1.weight");
  EXPECT_NEAR(w.std().item<double>(), 0.02, 0.002);
  EXPECT_NEAR(w.mean().item<double>(), 0.0, 0.002);
  const auto bn = find_tensor(*g, "model.10.conv_block.2.weight");
  EXPECT_NEAR(bn.mean().item<double>(), 1.0, 0.01);
  EXPECT_GT(bn.std().item<double>(), 0.005);
  EXPECT_EQ(find_tensor(*g, "model.10.conv_block.2.bias").abs().sum().item<double>(), 0.0);
  EXPECT_EQ(find_tensor(*g, "model.26.bias").abs().sum().item<double>(), 0.0);
}
