#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "ganlite/nn/discriminator.h"
#include "ganlite/nn/generator.h"
#include "ganlite/nn/profiler.h"
#include "ganlite/util/error.h"
#include "nn_test_helpers.h"

using namespace ganlite;
using ganlite::testing::small_config;

namespace {
nn::ModelProfile profile(const std::string& arch, int ngf, const std::string& norm = "instance") {
  nn::ArchConfig c = small_config(arch, ngf);
  c.norm = norm;
  return nn::profile_generator(c, 256);
}
}  // namespace

// Check values of methods.md section 5, recomputed with the public PyTorch definitions.
TEST(Profiler, ResnetNgf64MatchesThePaper) {
  const auto p = profile("resnet", 64);
  EXPECT_EQ(p.macs, 56799264768);
  EXPECT_EQ(p.params, 11378179);
  EXPECT_EQ(nn::format_macs(p.macs), "56.80G");
  EXPECT_EQ(nn::format_params(p.params), "11.378M");
}

TEST(Profiler, SmallResnetsMatchThePapers) {
  const auto p24 = profile("resnet", 24);
  EXPECT_EQ(p24.macs, 8276410368);
  EXPECT_EQ(p24.params, 1605699);
  EXPECT_EQ(nn::format_macs(p24.macs), "8.28G");
  EXPECT_EQ(nn::format_params(p24.params), "1.606M");
  const auto p16 = profile("resnet", 16);
  EXPECT_EQ(p16.macs, 3781165056);
  EXPECT_EQ(p16.params, 715651);
}

TEST(Profiler, MobileResnetsMatchThePapers) {
  const auto p16 = profile("mobile_resnet", 16);
  EXPECT_EQ(p16.macs, 1407713280);
  EXPECT_EQ(p16.params, 137347);
  EXPECT_EQ(nn::format_macs(p16.macs), "1.41G");
  EXPECT_EQ(nn::format_params(p16.params), "0.137M");
  const auto p64 = profile("mobile_resnet", 64);
  EXPECT_EQ(p64.macs, 18314428416);
  EXPECT_EQ(p64.params, 1987075);
}

TEST(Profiler, CatInceptionTeacherMatches) {
  const auto p = profile("inception", 64, "instance_affine");
  EXPECT_EQ(p.macs, 43527405568);
  EXPECT_EQ(p.params, 8154255);
  EXPECT_EQ(nn::format_macs(p.macs), "43.53G");
}

TEST(Profiler, AffineNormsCountOutputElementsNonAffineNothing) {
  // Only the norms differ: the difference is the norms' output elements.
  nn::ArchConfig c = small_config("resnet", 8);
  c.n_blocks = 1;
  const auto plain = nn::profile_generator(c, 32);
  c.norm = "instance_affine";
  const auto affine = nn::profile_generator(c, 32);
  int64_t norm_elements = 0;
  for (const auto& l : affine.layers) {
    if (l.type == "InstanceNorm2d") {
      int64_t n = 1;
      for (auto d : l.output_shape) n *= d;
      norm_elements += n;
      EXPECT_EQ(l.macs, n) << l.name;
    }
  }
  EXPECT_GT(norm_elements, 0);
  EXPECT_EQ(affine.macs - plain.macs, norm_elements);
}

TEST(Profiler, PerLayerRowsNameTheLayersAndAddUp) {
  nn::ArchConfig c = small_config("mobile_resnet", 8);
  c.n_blocks = 2;
  const auto p = nn::profile_generator(c, 32);
  int64_t sum = 0;
  bool saw_depthwise = false, saw_transpose = false;
  for (const auto& l : p.layers) {
    sum += l.macs;
    EXPECT_NE(l.name, "?");
    if (l.name == "model.10.conv_block.1.conv.0") {
      saw_depthwise = true;
      EXPECT_EQ(l.type, "Conv2d");
      EXPECT_EQ(l.output_shape, (std::vector<int64_t>{1, 32, 8, 8}));
      EXPECT_EQ(l.macs, 32 * 8 * 8 * 1 * 9);  // groups = C: one input channel per output
      EXPECT_EQ(l.params, 32 * 9 + 32);
    }
    if (l.name == "model.12") {
      saw_transpose = true;
      EXPECT_EQ(l.type, "ConvTranspose2d");
      EXPECT_EQ(l.output_shape, (std::vector<int64_t>{1, 16, 16, 16}));
      EXPECT_EQ(l.macs, int64_t{16} * 16 * 16 * 32 * 9);  // at the output resolution
    }
  }
  EXPECT_TRUE(saw_depthwise);
  EXPECT_TRUE(saw_transpose);
  EXPECT_EQ(sum, p.macs);
  const auto j = p.to_json(true);
  EXPECT_EQ(j.at("macs").get<int64_t>(), p.macs);
  EXPECT_EQ(j.at("layers").size(), p.layers.size());
  EXPECT_FALSE(p.to_json(false).contains("layers"));
}

TEST(Profiler, PrunedWidthsCostLessAndTrainingModeIsRestored) {
  nn::ArchConfig c = small_config("resnet", 16);
  c.n_blocks = 3;
  auto full = nn::make_generator(c);
  c = c.with_resolved_widths();
  c.widths.blocks = {{8}, {8}, {8}};
  auto pruned = nn::make_generator(c);
  pruned->train();
  const auto pf = nn::profile_generator(*full, 64);
  const auto pp = nn::profile_generator(*pruned, 64);
  EXPECT_LT(pp.macs, pf.macs);
  EXPECT_LT(pp.params, pf.params);
  EXPECT_TRUE(pruned->is_training());
  // Each block's two 3x3 convs: 2 * (16*16 out px) * 64 * 8 * 9 MACs instead of 64 * 64.
  EXPECT_EQ(pf.macs - pp.macs, int64_t{3} * 2 * 16 * 16 * 9 * 64 * (64 - 8));
}

TEST(Profiler, DiscriminatorsCanBeProfiled) {
  nn::DiscriminatorConfig dc;
  dc.input_nc = 6;
  dc.ndf = 8;
  auto d = nn::make_discriminator(dc);
  const auto x = torch::zeros({1, 6, 64, 64});
  const auto p = nn::profile_forward(*d, [&] { d->forward(x); });
  // conv0: 32x32x8 out * 6*16; conv1: 16x16x16 * 8*16; bn 16*16*16; conv2: 8x8x32 * 16*16; bn 8*8*32;
  // conv3: 7x7x64 * 32*16; bn 7*7*64; conv4: 6x6x1 * 64*16.
  const int64_t expected = 32 * 32 * 8 * 96 + 16 * 16 * 16 * 128 + 16 * 16 * 16 + 8 * 8 * 32 * 256 + 8 * 8 * 32 +
                           7 * 7 * 64 * 512 + 7 * 7 * 64 + 6 * 6 * 1 * 1024;
  EXPECT_EQ(p.macs, expected);
  EXPECT_EQ(p.params, nn::count_parameters(*d));
}

TEST(Profiler, BadInputSizeIsAnError) {
  nn::ArchConfig c = small_config("unet", 4);
  EXPECT_THROW(nn::profile_generator(c, 100), Error);
  EXPECT_THROW(nn::profile_generator(small_config("resnet", 4), 0), UsageError);
}
