#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_support.h"

using ganlite::testing::run_cli;

TEST(ProfileCli, JsonHasIntegerCounts) {
  auto r = run_cli("profile --arch mobile_resnet --ngf 16 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  EXPECT_EQ(j.at("macs").get<int64_t>(), 1407713280);
  EXPECT_EQ(j.at("params").get<int64_t>(), 137347);
  EXPECT_EQ(j.at("arch"), "mobile_resnet");
  EXPECT_EQ(j.at("input_size"), 256);
  EXPECT_FALSE(j.contains("layers"));
}

TEST(ProfileCli, TextAndPerLayer) {
  auto r = run_cli("profile --arch resnet --ngf 16 --input-size 64 --per-layer --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  // MACs scale with the pixel count: 64x64 is 1/16 of the 256x256 figure.
  EXPECT_EQ(j.at("macs").get<int64_t>() * 16, 3781165056);
  ASSERT_TRUE(j.contains("layers"));
  EXPECT_EQ(j.at("layers").at(1).at("name"), "model.1");
  r = run_cli("profile --arch resnet --ngf 16");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("3.78G"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("0.716M"), std::string::npos) << r.output;
}

TEST(ProfileCli, BadChoicesExitTwoNamingValidValues) {
  auto r = run_cli("profile --arch resnext");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("mobile_resnet"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("inception"), std::string::npos) << r.output;
  r = run_cli("profile --norm layer");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("instance_affine"), std::string::npos) << r.output;
  r = run_cli("profile --arch unet --input-size 100");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("256"), std::string::npos) << r.output;
}

TEST(ProfileCli, Help) {
  auto r = run_cli("profile --help");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("--per-layer"), std::string::npos);
}
