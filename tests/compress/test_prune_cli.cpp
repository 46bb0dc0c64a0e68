#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "ganlite/io/checkpoint.h"
#include "ganlite/nn/generator.h"
#include "test_support.h"

using namespace ganlite;
using ganlite::testing::run_cli;
using ganlite::testing::TempDir;

namespace {
std::string save_teacher(const TempDir& dir, const std::string& norm) {
  nn::ArchConfig c;
  c.arch = "inception";
  c.ngf = 8;
  c.n_blocks = 3;
  c.norm = norm;
  auto g = nn::make_generator(c);
  torch::manual_seed(11);
  {
    torch::NoGradGuard no_grad;
    for (const auto& n : g->scored_norms()) {
      if (n.weight().defined()) n.weight().uniform_(0.05, 1.0);
    }
  }
  const auto path = (dir / ("teacher_" + norm + ".safetensors")).string();
  io::save_generator(path, *g);
  return path;
}
}  // namespace

TEST(PruneCli, PrunesToTheBudgetAndWritesALoadableStudent) {
  TempDir dir;
  const auto teacher = save_teacher(dir, "batch");
  const auto student = (dir / "student.safetensors").string();
  auto r = run_cli("prune --teacher " + teacher + " --target-macs 15M --input-size 64 --min-channels 4 --out " +
                   student + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  // The budget bounds CAT's search count (BatchNorm left out); the report counts BatchNorm.
  EXPECT_LE(j["search_macs"].get<int64_t>(), 15000000);
  EXPECT_GT(j["search_macs"].get<int64_t>(), 0.8 * 15000000);
  EXPECT_GT(j["macs_after"].get<int64_t>(), j["search_macs"].get<int64_t>());
  EXPECT_GT(j["macs_before"].get<int64_t>(), j["macs_after"].get<int64_t>());
  EXPECT_GT(j["threshold"].get<double>(), 0.0);
  EXPECT_EQ(j["widths"]["blocks"].size(), 3u);
  auto g = io::load_generator(student);
  EXPECT_EQ(g->config().widths.trunk, j["widths"]["trunk"].get<int>());
  EXPECT_EQ(j["lane_width"].get<int>(), 0);  // CAT's exact counts unless asked

  // --lane-width 4: every kept count a multiple of 4 (or 0, a vanished branch), still in the budget.
  r = run_cli("prune --teacher " + teacher + " --target-macs 15M --input-size 64 --min-channels 4 --lane-width 4 --out " +
              student + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto lanes = nlohmann::json::parse(r.output);
  EXPECT_EQ(lanes["lane_width"].get<int>(), 4);
  EXPECT_LE(lanes["search_macs"].get<int64_t>(), 15000000);
  // ... or the teacher's whole width, where that is below the next multiple.
  const auto whole = io::load_generator(teacher)->config().with_resolved_widths().to_json()["widths"];
  const auto& w = lanes["widths"];
  auto lane_or_whole = [](const nlohmann::json& kept, const nlohmann::json& all) {
    return kept.get<int>() % 4 == 0 || kept == all;
  };
  for (const char* layer : {"stem", "down1", "trunk", "up1", "up2"}) EXPECT_TRUE(lane_or_whole(w[layer], whole[layer])) << layer;
  for (size_t b = 0; b < w["blocks"].size(); ++b) {
    for (size_t i = 0; i < w["blocks"][b].size(); ++i) {
      EXPECT_TRUE(lane_or_whole(w["blocks"][b][i], whole["blocks"][b][i])) << w["blocks"][b].dump();
    }
  }
  EXPECT_EQ(io::load_generator(student)->config().to_json()["widths"], w);

  // Human-readable output names the threshold and the MACs.
  r = run_cli("prune --teacher " + teacher + " --target-macs 15M --input-size 64 --min-channels 4 --reinit --out " +
              student);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("threshold"), std::string::npos);
  EXPECT_NE(r.output.find("re-initialised"), std::string::npos);
}

TEST(PruneCli, ExplainsTeachersWithoutScalesAndBadBudgets) {
  TempDir dir;
  const auto plain = save_teacher(dir, "instance");
  auto r = run_cli("prune --teacher " + plain + " --target-macs 60M --input-size 64 --out " +
                   (dir / "s.safetensors").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("instance_affine"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "s.safetensors"));

  const auto teacher = save_teacher(dir, "batch");
  r = run_cli("prune --teacher " + teacher + " --target-macs 1k --input-size 64 --out " + (dir / "s.safetensors").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("smallest network"), std::string::npos) << r.output;

  r = run_cli("prune --teacher " + teacher + " --target-macs lots --out " + (dir / "s.safetensors").string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("lots"), std::string::npos) << r.output;

  r = run_cli("prune --teacher " + (dir / "missing.safetensors").string() + " --target-macs 1G --out x");
  EXPECT_EQ(r.exit_code, 2) << r.output;
}

// --target-latency runs end to end (its search logic is tested on a fake machine in
// test_latency_budget.cpp); the figures it times are reported, never checked.
TEST(PruneCli, TargetLatencyReportsPredictedAndMeasured) {
  TempDir dir;
  const auto teacher = save_teacher(dir, "batch");
  const auto student = (dir / "student.safetensors").string();
  auto r = run_cli("prune --teacher " + teacher + " --target-latency 1000ms --input-size 32 --min-channels 4 " +
                   "--threads 1 --no-cache --out " + student + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  const auto& lat = j.at("latency");
  EXPECT_EQ(lat["target_ms"].get<double>(), 1000.0);
  EXPECT_GT(lat["predicted_ms"].get<double>(), 0.0);
  EXPECT_GT(lat["measured_ms"].get<double>(), 0.0);
  EXPECT_GE(lat["rounds"].size(), 1u);
  EXPECT_EQ(lat["table_cache"].get<std::string>(), "");  // --no-cache
  // A budget the teacher itself meets keeps it whole (threshold 0), as --target-macs does.
  EXPECT_EQ(j["threshold"].get<double>(), 0.0);
  EXPECT_EQ(io::load_generator(student)->config().widths.trunk, j["widths"]["trunk"].get<int>());
  // --lane-width auto (the default): the ISA's channel block, and the other family for comparison;
  // the whole teacher has nothing to round, so the exact family stays.
  const int lanes = lat["lane_width"].get<int>();
  EXPECT_TRUE(lanes == 4 || lanes == 8 || lanes == 16) << lanes;
  EXPECT_EQ(lat["rounding"].get<std::string>(), "exact");
  for (const char* family : {"exact", "up", "nearest"}) EXPECT_TRUE(lat["families"].contains(family)) << family;
  r = run_cli("prune --teacher " + teacher + " --target-latency 1000ms --input-size 32 --min-channels 4 " +
              "--threads 1 --no-cache --lane-width off --out " + student + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(nlohmann::json::parse(r.output)["latency"]["lane_width"].get<int>(), 0);
  EXPECT_EQ(nlohmann::json::parse(r.output)["latency"]["families"].size(), 1u);

  for (const std::string bad : {"--target-latency 30ms --target-macs 1G", "--target-latency fast", "",
                                "--target-macs 1G --lane-width 1", "--target-latency 30ms --lane-width 1",
                                "--target-latency 30ms --lane-width wide"}) {
    r = run_cli("prune --teacher " + teacher + " " + bad + " --out " + student);
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.output;
  }
}
