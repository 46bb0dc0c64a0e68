// Defaults that follow the papers (methods.md 1.3, 2): an inception teacher gets the norm its
// task uses in CAT and that CAT's pruning needs, its discriminator the affine norm of CAT's
// recipes (--norm_affine_D); so `train --arch inception` then `prune` works without norm flags.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "ganlite/io/checkpoint.h"
#include "ganlite/nn/profiler.h"
#include "ganlite/train/train_config.h"
#include "test_support.h"

namespace train = ganlite::train;
using ganlite::testing::read_text_file;
using ganlite::testing::run_cli;
using ganlite::testing::TempDir;

namespace {

std::string q(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

train::TrainConfig resolved_for(const std::string& task, const std::string& arch) {
  train::TrainConfig c;
  c.task = task;
  c.generator.arch = arch;
  return c.resolved();
}

}  // namespace

TEST(Defaults, NormsFollowTheTaskAndArchitecture) {
  struct Case {
    const char* task;
    const char* arch;
    const char* norm;
    const char* norm_d;
  };
  for (const auto& c : std::vector<Case>{{"pix2pix", "inception", "batch", "batch"},
                                         {"cyclegan", "inception", "instance_affine", "instance_affine"},
                                         {"pix2pix", "resnet", "instance", "instance"},
                                         {"cyclegan", "resnet", "instance", "instance"},
                                         {"pix2pix", "mobile_resnet", "instance", "instance"},
                                         {"pix2pix", "unet", "instance", "instance"}}) {
    const auto r = resolved_for(c.task, c.arch);
    EXPECT_EQ(r.generator.norm, c.norm) << c.task << " " << c.arch;
    EXPECT_EQ(r.norm_D, c.norm_d) << c.task << " " << c.arch;
    EXPECT_EQ(r.resolved().generator.norm, c.norm) << "resolved() is idempotent";
  }
  // Given norms are kept; an inception D follows the generator's norm, made affine.
  train::TrainConfig c;
  c.generator.arch = "inception";
  c.generator.norm = "instance";
  EXPECT_EQ(c.resolved().generator.norm, "instance");
  EXPECT_EQ(c.resolved().norm_D, "instance_affine");
  c.generator.norm = "none";
  EXPECT_EQ(c.resolved().norm_D, "none");
  c.norm_D = "batch";
  EXPECT_EQ(c.resolved().norm_D, "batch");
}

TEST(Defaults, AutoNormsSurviveTheConfigFile) {
  // An unresolved config round-trips with "auto"; a hand-written one without the norms gets the
  // task's defaults.
  train::TrainConfig c;
  c.task = "cyclegan";
  c.generator.arch = "inception";
  const auto back = train::TrainConfig::from_json_string(c.to_json_string(), "mem.json");
  EXPECT_EQ(back.generator.norm, train::kAutoNorm);
  EXPECT_EQ(back.norm_D, train::kAutoNorm);
  EXPECT_EQ(back.resolved().generator.norm, "instance_affine");
  const auto hand = train::TrainConfig::from_json_string(
      R"({"task": "pix2pix", "generator": {"arch": "inception", "ngf": 8}})", "hand.json");
  EXPECT_EQ(hand.resolved().generator.norm, "batch");
  EXPECT_EQ(hand.resolved().norm_D, "batch");
  const auto given = train::TrainConfig::from_json_string(
      R"({"task": "pix2pix", "norm_D": "instance", "generator": {"arch": "inception", "norm": "instance_affine"}})",
      "given.json");
  EXPECT_EQ(given.resolved().generator.norm, "instance_affine");
  EXPECT_EQ(given.resolved().norm_D, "instance");
}

TEST(Defaults, InceptionTeacherTrainsThenPrunesWithoutNormFlags) {
  TempDir dir;
  auto r = run_cli("make-dataset --kind edges2shapes --count 4 --test-count 2 --size 32 --seed 3 --threads 1 -q "
                   "--out " + q(dir / "data"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_cli("train --task pix2pix --data " + q(dir / "data") +
              " --arch inception --ngf 8 --n-blocks 3 --ndf 16 --load-size 32 --crop-size 32 --max-iters 2"
              " --threads 1 -q --out " + q(dir / "run"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto config = nlohmann::json::parse(read_text_file(dir / "run" / "config.json"));
  EXPECT_EQ(config["generator"]["norm"], "batch");
  EXPECT_EQ(config["norm_D"], "batch");

  const auto teacher = dir / "run" / "checkpoints" / "latest_net_G.safetensors";
  ASSERT_TRUE(std::filesystem::exists(teacher));
  const int64_t macs = ganlite::nn::profile_generator(ganlite::io::load_generator(teacher)->config(), 32).macs;
  r = run_cli("prune --teacher " + q(teacher) + " --target-macs " + std::to_string(macs / 2) +
              " --input-size 32 --min-channels 4 --out " + q(dir / "student.safetensors") + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // The budget bounds the MACs as CAT's search counts them (BatchNorm left out; issue 15).
  EXPECT_LE(nlohmann::json::parse(r.output)["search_macs"].get<int64_t>(), macs / 2);
}
