#include <gtest/gtest.h>

#include "test_support.h"

using ganlite::testing::run_cli;

TEST(Cli, VersionPrintsLibTorchVersion) {
  auto r = run_cli("version --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"libtorch\""), std::string::npos);
  EXPECT_NE(r.output.find("\"cpu\""), std::string::npos);
}

TEST(Cli, UnknownCommandIsUsageError) {
  auto r = run_cli("no-such-command");
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

TEST(Cli, NoCommandIsUsageError) {
  auto r = run_cli("");
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

TEST(Cli, HelpExitsZero) {
  auto r = run_cli("--help");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("version"), std::string::npos);
}
