// Outputs match the public PyTorch models to fp32 rounding (tests/tolerance.h): the fixtures hold a
// tiny model's state dict (random weights, random BatchNorm statistics), an input and the output
// of the public definition in eval mode, saved with torch.save (see tests/fixtures/nn/README.md).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <iterator>

#include "ganlite/nn/generator.h"
#include "nn_test_helpers.h"
#include "tolerance.h"

using namespace ganlite;

namespace {

void expect_matches_public_output(nn::ArchConfig config, const std::string& fixture) {
  std::ifstream in(std::string(GANLITE_FIXTURES_DIR) + "/nn/" + fixture, std::ios::binary);
  ASSERT_TRUE(in) << fixture;
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto dict = torch::pickle_load(bytes).toGenericDict();

  auto g = nn::make_generator(config);
  torch::Tensor input, expected;
  size_t loaded = 0;
  {
    torch::NoGradGuard no_grad;
    for (const auto& entry : dict) {
      const std::string key = entry.key().toStringRef();
      const torch::Tensor value = entry.value().toTensor();
      if (key == "__input__") {
        input = value;
      } else if (key == "__output__") {
        expected = value;
      } else {
        torch::Tensor target = ganlite::testing::find_tensor(*g, key);
        ASSERT_TRUE(target.defined()) << "no tensor for public key " << key;
        ASSERT_EQ(target.sizes(), value.sizes()) << key;
        target.copy_(value);
        ++loaded;
      }
    }
  }
  // Every tensor of ours came from the public state dict.
  EXPECT_EQ(loaded, ganlite::testing::state_dict_lines(*g).size());
  ASSERT_TRUE(input.defined() && expected.defined());
  g->eval();
  torch::NoGradGuard no_grad;
  const auto output = g->forward(input);
  // PyTorch's fp32 kernels (on the machine that wrote the fixture) against LibTorch's here.
  const double bound = ganlite::testing::fp32_network_tolerance(*g, ganlite::testing::max_abs(expected));
  ganlite::testing::expect_close(output, expected, bound, fixture);
  // The same forward with the taps kept: the same code path, the same numbers.
  const auto with_taps = g->forward_with_taps(input);
  EXPECT_TRUE(torch::equal(with_taps.image, output)) << fixture;
}

nn::ArchConfig tiny(const std::string& arch, int ngf, int n_blocks, const std::string& norm) {
  nn::ArchConfig c;
  c.arch = arch;
  c.ngf = ngf;
  c.n_blocks = n_blocks;
  c.norm = norm;
  return c;
}

}  // namespace

TEST(Numerics, ResnetMatchesPublicModel) {
  expect_matches_public_output(tiny("resnet", 4, 2, "instance_affine"), "resnet_ngf4_b2_numerics.pt");
}

TEST(Numerics, MobileResnetMatchesPublicModel) {
  expect_matches_public_output(tiny("mobile_resnet", 4, 2, "batch"), "mobile_resnet_ngf4_b2_numerics.pt");
}

TEST(Numerics, InceptionMatchesPublicModel) {
  expect_matches_public_output(tiny("inception", 4, 3, "instance_affine"), "inception_ngf4_b3_numerics.pt");
}

TEST(Numerics, UnetMatchesPublicModelIncludingItsInPlaceSkip) {
  nn::ArchConfig c = tiny("unet", 2, 9, "batch");
  c.num_downs = 5;
  expect_matches_public_output(c, "unet_ngf2_d5_numerics.pt");
}
