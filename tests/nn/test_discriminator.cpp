#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>

#include "ganlite/nn/discriminator.h"
#include "ganlite/nn/discriminator_registry.h"
#include "ganlite/nn/forward_trace.h"
#include "ganlite/nn/init.h"
#include "ganlite/util/error.h"
#include "nn_test_helpers.h"
#include "test_support.h"

using namespace ganlite;
using ganlite::testing::find_tensor;
using ganlite::testing::state_dict_lines;

namespace {
using ganlite::testing::shape_of;
}  // namespace

TEST(Discriminator, NLayerKeysFeaturesAndCut) {
  nn::DiscriminatorConfig c;
  c.input_nc = 6;  // conditional pix2pix D
  c.ndf = 8;
  auto d = nn::make_discriminator(c);
  d->eval();
  const auto lines = state_dict_lines(*d);
  const std::vector<std::string> expected{
      "model.0.weight 8x6x4x4",      "model.0.bias 8",
      "model.2.weight 16x8x4x4",     "model.3.weight 16",
      "model.3.bias 16",             "model.3.running_mean 16",
      "model.3.running_var 16",      "model.3.num_batches_tracked ",
      "model.5.weight 32x16x4x4",    "model.6.weight 32",
      "model.6.bias 32",             "model.6.running_mean 32",
      "model.6.running_var 32",      "model.6.num_batches_tracked ",
      "model.8.weight 64x32x4x4",    "model.9.weight 64",
      "model.9.bias 64",             "model.9.running_mean 64",
      "model.9.running_var 64",      "model.9.num_batches_tracked ",
      "model.11.weight 1x64x4x4",    "model.11.bias 1"};
  EXPECT_EQ(lines, expected);

  const auto x = torch::randn({2, 6, 64, 64});
  const auto out = d->forward(x);
  ASSERT_EQ(out.scales.size(), 1u);
  const auto& features = out.scales[0].features;
  ASSERT_EQ(features.size(), 4u);
  EXPECT_EQ(shape_of(features[0]), (std::vector<int64_t>{2, 8, 32, 32}));
  EXPECT_EQ(shape_of(features[1]), (std::vector<int64_t>{2, 16, 16, 16}));
  EXPECT_EQ(shape_of(features[2]), (std::vector<int64_t>{2, 32, 8, 8}));
  EXPECT_EQ(shape_of(features[3]), (std::vector<int64_t>{2, 64, 7, 7}));
  EXPECT_EQ(shape_of(out.scales[0].logits), (std::vector<int64_t>{2, 1, 6, 6}));
  // The same operations as running the Sequential whole, and cut before its last conv (DCD's D').
  auto& model = *dynamic_cast<nn::NLayerDiscriminatorImpl&>(*d).model;
  EXPECT_TRUE(torch::equal(out.scales[0].logits, model.forward(x)));
  EXPECT_TRUE(torch::equal(features[3], nn::run_sequential(model, x, 0, model.size() - 1)));
}

TEST(Discriminator, NLayerWidthsCapAtEightNdf) {
  nn::DiscriminatorConfig c;
  c.ndf = 4;
  c.n_layers = 5;
  c.norm = "instance";
  auto d = nn::make_discriminator(c);
  // Stages: 4, 8, 16, 32, 32 (capped), then the stride-1 conv at 8ndf = 32 and the output conv.
  EXPECT_EQ(shape_of(find_tensor(*d, "model.8.weight")), (std::vector<int64_t>{32, 16, 4, 4}));
  EXPECT_EQ(shape_of(find_tensor(*d, "model.11.weight")), (std::vector<int64_t>{32, 32, 4, 4}));
  EXPECT_TRUE(find_tensor(*d, "model.11.bias").defined());  // instance norm: convs keep a bias
  EXPECT_EQ(shape_of(find_tensor(*d, "model.14.weight")), (std::vector<int64_t>{32, 32, 4, 4}));
  EXPECT_EQ(shape_of(find_tensor(*d, "model.17.weight")), (std::vector<int64_t>{1, 32, 4, 4}));
  EXPECT_EQ(d->forward(torch::zeros({1, 3, 128, 128})).scales.at(0).features.size(), 6u);
}

TEST(Discriminator, PixelKeysAndFeatures) {
  nn::DiscriminatorConfig c;
  c.arch = "pixel";
  c.ndf = 4;
  auto d = nn::make_discriminator(c);
  d->eval();
  EXPECT_EQ(shape_of(find_tensor(*d, "net.0.weight")), (std::vector<int64_t>{4, 3, 1, 1}));
  EXPECT_EQ(shape_of(find_tensor(*d, "net.2.weight")), (std::vector<int64_t>{8, 4, 1, 1}));
  EXPECT_FALSE(find_tensor(*d, "net.2.bias").defined());
  EXPECT_TRUE(find_tensor(*d, "net.3.running_var").defined());
  EXPECT_EQ(shape_of(find_tensor(*d, "net.5.weight")), (std::vector<int64_t>{1, 8, 1, 1}));
  const auto x = torch::randn({1, 3, 16, 16});
  const auto out = d->forward(x);
  ASSERT_EQ(out.scales.size(), 1u);
  const auto& f = out.scales[0].features;
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(shape_of(f[1]), (std::vector<int64_t>{1, 8, 16, 16}));
  auto& net = *dynamic_cast<nn::PixelDiscriminatorImpl&>(*d).net;
  EXPECT_TRUE(torch::equal(f[1], nn::run_sequential(net, x, 0, net.size() - 1)));
  EXPECT_EQ(shape_of(out.scales[0].logits), (std::vector<int64_t>{1, 1, 16, 16}));
}

// Every registered kind builds through make_discriminator and returns one scale: its features
// (after each LeakyReLU) and logits at the shapes of its layer layout. A new kind adds its row.
TEST(Discriminator, EveryRegisteredKindReturnsOneScaleWithItsFeatures) {
  using Shapes = std::vector<std::vector<int64_t>>;
  struct Expected {
    int n_layers;
    Shapes features;  // of the first scale (the input's resolution)
    std::vector<int64_t> logits;
    size_t n_scales = 1;
  };
  // ndf 4, 3 channels in, 32x32: 4x4 s2 convs halve, the two 4x4 s1 convs take 1 off each side.
  const std::map<std::string, Expected> expected{
      {"basic", {7, {{2, 4, 16, 16}, {2, 8, 8, 8}, {2, 16, 4, 4}, {2, 32, 3, 3}}, {2, 1, 2, 2}}},  // 3 whatever n_layers
      {"n_layers", {2, {{2, 4, 16, 16}, {2, 8, 8, 8}, {2, 16, 7, 7}}, {2, 1, 6, 6}}},
      {"pixel", {3, {{2, 4, 32, 32}, {2, 8, 32, 32}}, {2, 1, 32, 32}}},
      // SPADE's: 4x4 convs with padding 2 add one, s2 halves it rounding up; 4 layers, 2 scales.
      {"multiscale", {4, {{2, 4, 17, 17}, {2, 8, 9, 9}, {2, 16, 5, 5}, {2, 32, 6, 6}}, {2, 1, 7, 7}, 2}},
  };
  ASSERT_FALSE(nn::discriminator_kinds().empty());
  for (const auto& kind : nn::discriminator_kinds()) {
    SCOPED_TRACE(kind.name);
    const auto it = expected.find(kind.name);
    ASSERT_NE(it, expected.end()) << "no expected shapes for the registered kind " << kind.name;
    nn::DiscriminatorConfig c;
    c.arch = kind.name;
    c.ndf = 4;
    c.n_layers = it->second.n_layers;
    c.norm = "instance";
    auto d = nn::make_discriminator(c);
    const auto out = d->forward(torch::randn({2, 3, 32, 32}));
    ASSERT_EQ(out.scales.size(), it->second.n_scales);
    std::vector<std::vector<int64_t>> shapes;
    for (const auto& f : out.scales[0].features) shapes.push_back(shape_of(f));
    EXPECT_EQ(shapes, it->second.features);
    EXPECT_EQ(shape_of(out.scales[0].logits), it->second.logits);
    // The weight count computed without building matches the built module.
    int64_t conv_weights = 0;
    for (const auto& p : d->parameters()) conv_weights += p.dim() == 4 ? p.numel() : 0;
    EXPECT_EQ(c.conv_weight_count(), conv_weights);
  }
}

TEST(Discriminator, BadConfigsNameTheValidValues) {
  nn::DiscriminatorConfig c;
  c.arch = "patch";
  try {
    nn::make_discriminator(c);
    FAIL();
  } catch (const UsageError& e) {
    for (const auto& name : nn::discriminator_kind_names()) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(nn::find_discriminator_kind("patch"), nullptr);
  EXPECT_THROW(nn::discriminator_kind("patch"), UsageError);
  c.arch = "n_layers";
  c.norm = "group";
  EXPECT_THROW(nn::make_discriminator(c), UsageError);
}

// A --restore-d file's metadata picks the kind that rebuilds it: the one asked for when it can,
// else the first that can; a file no kind reads is refused naming the file.
TEST(Discriminator, KindForFileFollowsTheFileMetadata) {
  using ganlite::nn::discriminator_kind_for_file;
  EXPECT_EQ(discriminator_kind_for_file("n_layers", 3, "basic", "d.safetensors").name, "basic");
  EXPECT_EQ(discriminator_kind_for_file("n_layers", 3, "n_layers", "d.safetensors").name, "n_layers");
  EXPECT_EQ(discriminator_kind_for_file("n_layers", 4, "basic", "d.safetensors").name, "n_layers");
  EXPECT_EQ(discriminator_kind_for_file("pixel", 3, "basic", "d.safetensors").name, "pixel");
  try {
    discriminator_kind_for_file("multiscale", 3, "basic", "d.safetensors");
    FAIL() << "no kind reads a 'multiscale' file";
  } catch (const ganlite::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("d.safetensors"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("basic, n_layers, pixel"), std::string::npos) << e.what();
  }
}

TEST(Init, TypesAndErrors) {
  torch::manual_seed(3);
  nn::DiscriminatorConfig c;
  c.ndf = 32;
  auto d = nn::make_discriminator(c);
  nn::init_weights(*d, "xavier", 1.0);
  const auto w = find_tensor(*d, "model.5.weight");  // 128 x 64 x 4 x 4
  const double fan_in = 64 * 16, fan_out = 128 * 16;
  EXPECT_NEAR(w.std().item<double>(), std::sqrt(2.0 / (fan_in + fan_out)), 0.002);
  nn::init_weights(*d, "kaiming");
  EXPECT_NEAR(find_tensor(*d, "model.5.weight").std().item<double>(), std::sqrt(2.0 / fan_in), 0.003);
  nn::init_weights(*d, "orthogonal", 1.0);
  EXPECT_EQ(find_tensor(*d, "model.0.bias").abs().sum().item<double>(), 0.0);
  try {
    nn::init_weights(*d, "uniform");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("orthogonal"), std::string::npos) << e.what();
  }
}
