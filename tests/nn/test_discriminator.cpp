#include <gtest/gtest.h>
#include <torch/torch.h>

#include "ganlite/nn/discriminator.h"
#include "ganlite/nn/init.h"
#include "ganlite/util/error.h"
#include "nn_test_helpers.h"

using namespace ganlite;
using ganlite::testing::find_tensor;
using ganlite::testing::state_dict_lines;

namespace {
std::vector<int64_t> shape_of(const torch::Tensor& t) { return t.sizes().vec(); }
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
  const auto features = d->forward_features(x);
  ASSERT_EQ(features.size(), 5u);
  EXPECT_EQ(shape_of(features[0]), (std::vector<int64_t>{2, 8, 32, 32}));
  EXPECT_EQ(shape_of(features[1]), (std::vector<int64_t>{2, 16, 16, 16}));
  EXPECT_EQ(shape_of(features[2]), (std::vector<int64_t>{2, 32, 8, 8}));
  EXPECT_EQ(shape_of(features[3]), (std::vector<int64_t>{2, 64, 7, 7}));
  EXPECT_EQ(shape_of(features[4]), (std::vector<int64_t>{2, 1, 6, 6}));
  EXPECT_TRUE(torch::allclose(features[4], d->forward(x)));
  EXPECT_TRUE(torch::allclose(features[3], d->forward_cut(x)));
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
  EXPECT_EQ(d->forward_features(torch::zeros({1, 3, 128, 128})).size(), 7u);
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
  const auto f = d->forward_features(x);
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(shape_of(f[1]), (std::vector<int64_t>{1, 8, 16, 16}));
  EXPECT_TRUE(torch::allclose(f[1], d->forward_cut(x)));
  EXPECT_EQ(shape_of(d->forward(x)), (std::vector<int64_t>{1, 1, 16, 16}));
}

TEST(Discriminator, BadConfigsNameTheValidValues) {
  nn::DiscriminatorConfig c;
  c.arch = "patch";
  try {
    nn::make_discriminator(c);
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("n_layers"), std::string::npos) << e.what();
  }
  c.arch = "n_layers";
  c.norm = "group";
  EXPECT_THROW(nn::make_discriminator(c), UsageError);
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
