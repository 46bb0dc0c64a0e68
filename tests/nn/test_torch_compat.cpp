// compat::variant_get_if serves LibTorch's option variants whatever their type: c10::variant up
// to LibTorch 2.1, std::variant from 2.2 (both kinds are checked here, whichever this build has).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <variant>

#include "ganlite/torch_compat.h"

namespace {

namespace compat = ganlite::compat;

TEST(TorchCompat, VariantGetIfReadsConvOptions) {
  const torch::nn::Conv2dOptions explicit_pad = torch::nn::Conv2dOptions(3, 4, 3).padding(2);
  const auto* pads = compat::variant_get_if<torch::ExpandingArray<2>>(explicit_pad.padding());
  ASSERT_NE(pads, nullptr);
  EXPECT_EQ((**pads)[0], 2);
  EXPECT_TRUE(compat::variant_holds<torch::enumtype::kZeros>(explicit_pad.padding_mode()));
  EXPECT_FALSE(compat::variant_holds<torch::enumtype::kReflect>(explicit_pad.padding_mode()));

  const torch::nn::Conv2dOptions same = torch::nn::Conv2dOptions(3, 4, 3).padding(torch::kSame);
  EXPECT_EQ(compat::variant_get_if<torch::ExpandingArray<2>>(same.padding()), nullptr);
  EXPECT_TRUE(compat::variant_holds<torch::enumtype::kSame>(same.padding()));
}

TEST(TorchCompat, VariantGetIfReadsStdVariants) {
  const std::variant<int, double> v = 2.5;
  EXPECT_EQ(compat::variant_get_if<int>(v), nullptr);
  ASSERT_NE(compat::variant_get_if<double>(v), nullptr);
  EXPECT_EQ(*compat::variant_get_if<double>(v), 2.5);
}

}  // namespace
