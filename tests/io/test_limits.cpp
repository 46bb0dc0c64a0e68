// The documented bounds on what a file may ask for (issue 13): JSON numbers are never narrowed,
// nesting is bounded, an architecture's size is computed without building it (and exactly).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "ganlite/io/checkpoint.h"
#include "ganlite/io/safetensors.h"
#include "ganlite/metrics/fid.h"
#include "ganlite/nn/arch_config.h"
#include "ganlite/nn/discriminator.h"
#include "ganlite/nn/generator.h"
#include "ganlite/train/train_config.h"
#include "ganlite/util/error.h"
#include "ganlite/util/json_read.h"
#include "test_support.h"

using ganlite::UsageError;
using ganlite::nn::ArchConfig;
using json = nlohmann::json;

namespace {

using ganlite::testing::contains;

std::string usage_error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

int64_t built_conv_weights(const ArchConfig& config) {
  int64_t n = 0;
  for (const auto& p : ganlite::nn::make_generator(config)->parameters()) {
    if (p.dim() == 4) n += p.numel();
  }
  return n;
}

ArchConfig arch(const std::string& name, int ngf, int n_blocks, const std::string& norm = "instance") {
  ArchConfig c;
  c.arch = name;
  c.ngf = ngf;
  c.n_blocks = n_blocks;
  c.norm = norm;
  return c;
}

}  // namespace

TEST(Limits, JsonIntegersAreRefusedNeverNarrowed) {
  using ganlite::json_integer;
  const std::string message = usage_error_of([] { json_integer(json(uint64_t{1} << 40), "cfg.json: 'batch_size'", 1, 1024); });
  EXPECT_TRUE(contains(message, "cfg.json: 'batch_size'") && contains(message, "1099511627776")) << message;
  EXPECT_THROW(json_integer(json(-1), "x", 0, 10), UsageError);
  EXPECT_THROW(json_integer(json(1.5), "x", 0, 10), UsageError);
  EXPECT_THROW(json_integer(json("3"), "x", 0, 10), UsageError);
  EXPECT_THROW(json_integer(json(true), "x", 0, 10), UsageError);
  EXPECT_THROW(json_integer(json(1e300), "x", 0, INT64_MAX), UsageError);
  EXPECT_THROW(json_integer(json(9.3e18), "x", INT64_MIN, INT64_MAX), UsageError);
  EXPECT_EQ(json_integer(json(1e3), "x", 0, 1000), 1000);  // an integer written as a float
  EXPECT_EQ(json_integer(json(INT64_MIN), "x", INT64_MIN, 0), INT64_MIN);
  EXPECT_THROW(ganlite::json_unsigned(json(-1), "seed"), UsageError);
  EXPECT_EQ(ganlite::json_unsigned(json(UINT64_MAX), "seed"), UINT64_MAX);
  EXPECT_THROW(ganlite::json_number(json("0.1"), "lr", 0, 1), UsageError);
  EXPECT_THROW(ganlite::json_number(json(2.0), "lr", 0, 1), UsageError);
  // An int field cannot take what only int64 holds, whatever bounds the caller gave.
  int out = 7;
  const ganlite::JsonFields fields(json{{"n", int64_t{1} << 31}}, "f.json");
  EXPECT_THROW(fields.get("n", out, 0, INT64_MAX), UsageError);
  EXPECT_EQ(out, 7);
}

TEST(Limits, ConfigJsonNestingIsBounded) {
  auto nested = [](int levels) { return std::string(levels, '[') + std::string(levels, ']'); };
  EXPECT_NO_THROW(ganlite::parse_config_json(nested(ganlite::kMaxJsonDepth), "ok.json"));
  const std::string message =
      usage_error_of([&] { ganlite::parse_config_json(nested(ganlite::kMaxJsonDepth + 1), "deep.json"); });
  EXPECT_TRUE(contains(message, "deep.json") && contains(message, "nested")) << message;
  EXPECT_TRUE(contains(usage_error_of([] { ganlite::parse_config_json("{\"a\": ", "cut.json"); }), "cut.json"));
}

// The count is a lower bound a model file's tensors are checked against: too high and valid
// files would be refused. It must equal the built module's 4-d (conv) weights for every arch.
TEST(Limits, ConvWeightCountEqualsTheBuiltGenerators) {
  std::vector<ArchConfig> configs{arch("resnet", 3, 2), arch("resnet", 2, 1, "batch"), arch("mobile_resnet", 4, 3),
                                  arch("inception", 6, 3, "batch"), arch("unet", 2, 0), arch("unet", 1, 0)};
  configs[5].num_downs = 7;  // two middle levels at 8 ngf
  ArchConfig pruned = arch("inception", 8, 2, "batch").with_resolved_widths();
  pruned.widths.blocks = {{3, 0, 2, 0, 5, 1}, {0, 0, 0, 0, 0, 0}};  // absent branches, an empty block
  pruned.widths.stem = 5;
  pruned.input_nc = 1;
  pruned.output_nc = 2;
  configs.push_back(pruned);
  ArchConfig resnet_pruned = arch("resnet", 4, 2).with_resolved_widths();
  resnet_pruned.widths.blocks = {{3}, {7}};
  resnet_pruned.widths.up1 = 5;
  configs.push_back(resnet_pruned);
  for (const auto& c : configs) EXPECT_EQ(c.conv_weight_count(), built_conv_weights(c)) << c.to_json_string();
}

// The same for the discriminators a run config is checked with before building them.
TEST(Limits, ConvWeightCountEqualsTheBuiltDiscriminators) {
  for (const std::string arch : {"n_layers", "pixel"}) {
    for (const int n_layers : {1, 3, 5}) {
      ganlite::nn::DiscriminatorConfig d;
      d.arch = arch;
      d.input_nc = 6;
      d.ndf = 4;
      d.n_layers = n_layers;
      d.norm = "instance";
      int64_t built = 0;
      for (const auto& p : ganlite::nn::make_discriminator(d)->parameters()) {
        if (p.dim() == 4) built += p.numel();
      }
      EXPECT_EQ(d.conv_weight_count(), built) << arch << " n_layers " << n_layers;
    }
  }
}

TEST(Limits, ArchitectureBoundsNameTheField) {
  auto refusal = [](const ArchConfig& c) { return usage_error_of([&] { c.validate(); }); };
  EXPECT_NO_THROW(arch("resnet", ganlite::nn::kMaxNgf, 0).validate());
  EXPECT_TRUE(contains(refusal(arch("resnet", ganlite::nn::kMaxNgf + 1, 9)), "ngf"));
  EXPECT_NO_THROW(arch("resnet", 8, ganlite::nn::kMaxBlocks).validate());
  EXPECT_TRUE(contains(refusal(arch("resnet", 8, ganlite::nn::kMaxBlocks + 1)), "n_blocks"));
  // Every field within its bound, the whole beyond the weight limit (19G weights).
  EXPECT_TRUE(contains(refusal(arch("resnet", 1024, 64)), "convolution weights"));
  ArchConfig wide = arch("resnet", 4, 1).with_resolved_widths();
  wide.widths.trunk = ganlite::nn::kMaxWidth + 1;
  EXPECT_TRUE(contains(refusal(wide), "widths"));
  ArchConfig deep_unet = arch("unet", 2, 0);
  deep_unet.num_downs = ganlite::nn::kMaxNumDowns + 1;
  EXPECT_TRUE(contains(refusal(deep_unet), "num_downs"));
}

TEST(Limits, RunConfigBoundsNameTheFileAndField) {
  ganlite::train::TrainConfig c;
  c.dataroot = "data";
  json j = c.to_json();
  j["batch_size"] = ganlite::train::kMaxBatchSize;
  EXPECT_EQ(ganlite::train::TrainConfig::from_json(j, "run/config.json").batch_size, ganlite::train::kMaxBatchSize);
  j["batch_size"] = uint64_t{1} << 40;  // once narrowed to 0 by a cast to int
  const std::string message = usage_error_of([&] { ganlite::train::TrainConfig::from_json(j, "run/config.json"); });
  EXPECT_TRUE(contains(message, "run/config.json") && contains(message, "batch_size")) << message;
  j["batch_size"] = 1;
  j["generator"]["ngf"] = 1e6;
  EXPECT_TRUE(contains(usage_error_of([&] { ganlite::train::TrainConfig::from_json(j, "run/config.json"); }),
                       "generator.ngf"));
  c.load_size = ganlite::train::kMaxImageSize + 1;
  EXPECT_TRUE(contains(usage_error_of([&] { c.resolved().validate_config(); }), "load_size"));
}

// A model file whose metadata promises more network than its tensors hold is refused before
// the network is built.
TEST(Limits, ModelFileArchitectureMustFitItsTensors) {
  ganlite::testing::TempDir dir;
  auto g = ganlite::nn::make_generator(arch("resnet", 2, 1));
  ganlite::io::save_generator(dir / "g.safetensors", *g);
  EXPECT_EQ(ganlite::io::read_generator_arch(dir / "g.safetensors"), g->config());
  auto contents = ganlite::io::load_safetensors(dir / "g.safetensors");
  contents.metadata["arch_config"] = arch("resnet", 64, 9).to_json_string();
  ganlite::io::save_safetensors(dir / "lie.safetensors", contents.tensors, contents.metadata);
  try {
    ganlite::io::read_generator_arch(dir / "lie.safetensors");
    FAIL() << "accepted";
  } catch (const ganlite::Error& e) {
    EXPECT_TRUE(contains(e.what(), "lie.safetensors") && contains(e.what(), "does not match the weights")) << e.what();
  }
}

TEST(Limits, FidErrorsNameTheStatisticsFile) {
  ganlite::testing::TempDir dir;
  ganlite::metrics::FeatureStats small;
  small.mu = torch::zeros({4}, torch::kFloat64);
  small.sigma = torch::eye(4, torch::kFloat64);
  ganlite::metrics::save_statistics(dir / "real.npz", small);
  const auto loaded = ganlite::metrics::load_statistics(dir / "real.npz");
  const auto computed = ganlite::metrics::compute_statistics(torch::randn({3, 8}));
  try {
    ganlite::metrics::frechet_distance(loaded, computed);
    FAIL() << "accepted";
  } catch (const ganlite::Error& e) {
    EXPECT_TRUE(contains(e.what(), "real.npz")) << e.what();
  }
}
