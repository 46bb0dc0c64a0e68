// GauGAN's generators (nn/spade_generator.h, nn/inception_spade_generator.h): the published counts,
// the counts against the profiler and an independent PyTorch model (spade_reference.py), the
// public keys, configs, and the inference runner against the module.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "ganlite/compress/prune.h"
#include "ganlite/nn/generator_family.h"
#include "ganlite/nn/inception_spade_generator.h"
#include "ganlite/nn/inference.h"
#include "ganlite/nn/profiler.h"
#include "ganlite/nn/spade_generator.h"
#include "ganlite/util/error.h"
#include "nn_test_helpers.h"
#include "test_support.h"
#include "tolerance.h"

using namespace ganlite;
using nn::ArchConfig;

namespace {

ArchConfig spade_config(const std::string& arch, int ngf, int semantic_nc, const std::string& norm = "batch") {
  ArchConfig c;
  c.arch = arch;
  c.ngf = ngf;
  c.input_nc = semantic_nc;
  c.label_nc = semantic_nc - 1;
  c.norm = norm;
  return c;
}

nn::SpadeCounts analytic(const ArchConfig& c, int64_t h, int64_t w) {
  return c.arch == "spade" ? nn::spade_counts(c, h, w) : nn::inception_spade_counts(c, h, w);
}

// A one-hot label map of `classes` classes in 8x8 cells plus its edge channel.
torch::Tensor label_map(int64_t classes, int64_t h, int64_t w, uint64_t seed) {
  torch::manual_seed(seed);
  const auto cells = torch::randint(0, classes, {1, 1, h / 8, w / 8}, torch::kLong);
  const auto labels = torch::upsample_nearest2d(cells.to(torch::kFloat), {h, w}).to(torch::kLong);
  auto onehot = torch::zeros({1, classes, h, w}).scatter_(1, labels, 1.0);
  auto edge = torch::zeros({1, 1, h, w});
  using torch::indexing::Slice;
  edge.index({Slice(), Slice(), Slice(), Slice(1)}) +=
      labels.index({Slice(), Slice(), Slice(), Slice(1)}).ne(labels.index({Slice(), Slice(), Slice(), Slice(0, -1)}));
  edge.index({Slice(), Slice(), Slice(1), Slice()}) +=
      labels.index({Slice(), Slice(), Slice(1), Slice()}).ne(labels.index({Slice(), Slice(), Slice(0, -1), Slice()}));
  return torch::cat({onehot, edge.gt(0).to(torch::kFloat)}, 1);
}

// Weights at unit gain and random norm statistics / scales (tolerance.h: test networks at unit gain).
void unit_gain(torch::nn::Module& g, uint64_t seed) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(seed);
  for (const auto& item : g.named_modules()) {
    for (auto& p : item.value()->named_parameters(false)) {
      if (p.value().dim() == 4) p.value().normal_(0, 1.0 / std::sqrt(double(p.value()[0].numel())));
      if (p.value().dim() == 1 && p.key() == "bias") p.value().normal_(0, 0.1);
      if (p.value().dim() == 1 && p.key() == "weight") p.value().uniform_(0.5, 1.5);
    }
    for (auto& b : item.value()->named_buffers(false)) {
      if (b.key() == "running_mean") b.value().normal_(0, 0.2);
      if (b.key() == "running_var") b.value().uniform_(0.5, 1.5);
    }
  }
}

// A pruned student: absent branches in several places, one block without any block branch.
ArchConfig pruned_inception_spade() {
  ArchConfig c = spade_config("inception_spade", 4, 6);
  c.widths.blocks = nn::inception_spade_default_widths(c);
  c.widths.blocks[0] = {0, 3, 1, 2, 0, 4, 5, 0, 2, 0, 3, 1};
  c.widths.blocks[2] = {0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2};  // no block branch: the shortcut alone
  c.widths.blocks[4] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0};  // a SPADE without branches
  return c;
}

}  // namespace

// methods.md 1.5 / section 5: ngf 64, 36 input channels (cityscapes' 35 classes + edge), 256x512.
TEST(Spade, PublishedCountsAtTheCityscapesResolution) {
  const auto spade = nn::spade_counts(spade_config("spade", 64, 36), 256, 512);
  EXPECT_EQ(spade.macs, 281276612608);  // 281.28G (pub 281G)
  EXPECT_EQ(spade.params, 93048003);    // 93.05M (pub 93.0M)
  EXPECT_EQ(nn::format_macs(spade.macs), "281.28G");
  const auto cat = nn::inception_spade_counts(spade_config("inception_spade", 64, 36), 256, 512);
  EXPECT_EQ(cat.macs, 109853920448);  // 109.85G (CAT's profiler, without BatchNorm: 109.77G)
  EXPECT_EQ(cat.params, 55592325);    // 55.59M
  // CAT's profiler and pruning search leave BatchNorm out: its 109.77G.
  EXPECT_EQ(nn::inception_spade_counts(spade_config("inception_spade", 64, 36), 256, 512, false).macs, 109773614880);
}

// The counts the profiler measures on the built modules equal the analytic ones (which is what
// the pinned figures above rely on), pruned widths included.
TEST(Spade, AnalyticCountsEqualTheProfiler) {
  std::vector<ArchConfig> configs{spade_config("spade", 4, 6), spade_config("inception_spade", 4, 6),
                                  spade_config("inception_spade", 3, 5, "instance"), pruned_inception_spade()};
  for (const auto& c : configs) {
    SCOPED_TRACE(c.to_json_string());
    auto g = nn::make_generator(c);
    const auto x = torch::zeros({1, c.input_nc, 64, 128});
    const auto measured = nn::profile_forward(*g, [&] { g->forward(x); });
    const auto counted = analytic(c, 64, 128);
    EXPECT_EQ(measured.macs, counted.macs);
    EXPECT_EQ(measured.params, counted.params);
    EXPECT_EQ(c.conv_weight_count(), counted.conv_weights);
  }
}

// Independent PyTorch models of both architectures (spade_reference.py) count the same at other
// widths and sizes. Figures from `spade_reference.py counts ...`, checked live when python3-torch is there.
TEST(Spade, CountsAgreeWithAnIndependentPyTorchModel) {
  struct Row {
    std::string arch;
    int ngf, nc, h, w;
    int64_t macs, params;
  };
  const std::vector<Row> rows{{"spade", 8, 36, 256, 512, 45960577024, 4988731},
                              {"inception_spade", 8, 36, 256, 512, 12381798560, 1983221},
                              {"spade", 64, 36, 256, 512, 281276612608, 93048003},
                              {"inception_spade", 64, 36, 256, 512, 109853920448, 55592325}};
  std::string args;
  for (const auto& r : rows) {
    const auto c = analytic(spade_config(r.arch, r.ngf, r.nc), r.h, r.w);
    EXPECT_EQ(c.macs, r.macs) << r.arch << " ngf " << r.ngf;
    EXPECT_EQ(c.params, r.params) << r.arch << " ngf " << r.ngf;
  }
  if (!ganlite::testing::python_has_module("torch")) GTEST_SKIP() << "no python3-torch for the live reference";
  // Live: more widths and sizes, small enough to run in PyTorch in a second.
  const std::vector<Row> live{{"spade", 4, 6, 64, 128, 0, 0},       {"spade", 6, 9, 128, 64, 0, 0},
                              {"inception_spade", 4, 6, 64, 128, 0, 0}, {"inception_spade", 7, 9, 128, 192, 0, 0},
                              {"inception_spade", 12, 5, 64, 64, 0, 0}};
  for (const auto& r : live) {
    args += " " + r.arch + " " + std::to_string(r.ngf) + " " + std::to_string(r.nc) + " " + std::to_string(r.h) + " " +
            std::to_string(r.w);
  }
  const auto result = ganlite::testing::run_command(ganlite::testing::system_python() + " '" + GANLITE_SOURCE_DIR +
                                                    "/tests/nn/spade_reference.py' counts" + args);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  std::istringstream lines(result.output);
  for (const auto& r : live) {
    std::string line;
    while (std::getline(lines, line) && (line.empty() || line[0] != '{')) {
    }  // a warning PyTorch printed
    ASSERT_FALSE(line.empty()) << result.output;
    const auto j = nlohmann::json::parse(line);
    const auto c = analytic(spade_config(r.arch, r.ngf, r.nc), r.h, r.w);
    EXPECT_EQ(c.macs, j.at("macs").get<int64_t>()) << r.arch << " ngf " << r.ngf;
    EXPECT_EQ(c.params, j.at("params").get<int64_t>()) << r.arch << " ngf " << r.ngf;
  }
}

TEST(Spade, KeysFollowThePublicCode) {
  const auto spade = nn::make_generator(spade_config("spade", 4, 6));
  for (const char* key : {"fc.weight", "head_0.norm_0.mlp_shared.0.weight", "head_0.norm_0.mlp_gamma.bias",
                          "head_0.norm_0.param_free_norm.running_mean", "up_0.conv_s.weight", "up_0.norm_s.mlp_beta.weight",
                          "G_middle_1.conv_1.bias", "conv_img.weight"}) {
    EXPECT_TRUE(ganlite::testing::find_tensor(*spade, key).defined()) << key;
  }
  EXPECT_FALSE(ganlite::testing::find_tensor(*spade, "head_0.conv_s.weight").defined());
  EXPECT_FALSE(ganlite::testing::find_tensor(*spade, "up_0.conv_s.bias").defined());

  const auto cat = nn::make_generator(spade_config("inception_spade", 6, 6));
  for (const char* key : {"fc.weight", "fc_norm.weight", "fc_norm.running_var", "head_0.res_ops.0.0.conv.weight",
                          "head_0.res_ops.2.1.conv.bias", "head_0.dw_ops.1.1.conv.weight",
                          "head_0.dw_ops.1.1.norm.running_mean", "head_0.dw_ops.2.2.conv.weight",
                          "head_0.spade.res_ops.0.0.norm.weight", "head_0.spade.res_ops.2.1.weight",
                          "head_0.spade.dw_ops.1.1.norm.weight", "head_0.spade.dw_ops.0.2.bias",
                          "up_0.shortcut.0.weight", "up_0.shortcut.1.conv.weight", "conv_img.weight"}) {
    EXPECT_TRUE(ganlite::testing::find_tensor(*cat, key).defined()) << key;
  }
  EXPECT_FALSE(ganlite::testing::find_tensor(*cat, "head_0.dw_ops.1.1.norm.weight").defined());  // affine=False
  EXPECT_EQ(ganlite::testing::find_tensor(*cat, "head_0.res_ops.1.0.conv.weight").sizes(),
            (std::vector<int64_t>{16 * 6 / 6, 16 * 6, 3, 3}));
  EXPECT_EQ(ganlite::testing::find_tensor(*cat, "up_1.spade.dw_ops.2.2.weight").sizes(),
            (std::vector<int64_t>{2 * 8 * 6, 21, 1, 1}));
}

TEST(Spade, ForwardShapesAndTaps) {
  torch::NoGradGuard no_grad;
  for (const auto& c : {spade_config("spade", 4, 6), spade_config("inception_spade", 4, 6), pruned_inception_spade()}) {
    SCOPED_TRACE(c.arch);
    auto g = nn::make_generator(c);
    g->eval();
    const auto out = g->forward_with_taps(label_map(5, 64, 192, 1));
    EXPECT_EQ(out.image.sizes(), (std::vector<int64_t>{1, 3, 64, 192}));
    ASSERT_EQ(out.taps.size(), 4u);
    EXPECT_EQ(out.taps[0].sizes(), (std::vector<int64_t>{1, 64, 1, 3}));  // fc at 1/64
    EXPECT_EQ(out.taps[1].sizes(), (std::vector<int64_t>{1, 64, 1, 3}));  // head_0
    EXPECT_EQ(out.taps[2].sizes(), (std::vector<int64_t>{1, 64, 4, 12}));  // G_middle_1
    EXPECT_EQ(out.taps[3].sizes(), (std::vector<int64_t>{1, 16, 16, 48}));  // up_1
    EXPECT_TRUE(torch::equal(out.image, g->forward(label_map(5, 64, 192, 1))));
  }
}

TEST(Spade, ConfigJsonKeepsLabelsAndSizeAndOldConfigsLoad) {
  ArchConfig c = pruned_inception_spade();
  c.input_height = 128;
  c.input_width = 256;
  const auto j = c.to_json();
  EXPECT_EQ(j.at("label_nc"), 5);
  EXPECT_EQ(j.at("input_height"), 128);
  EXPECT_FALSE(j.at("widths").contains("stem"));
  EXPECT_EQ(ArchConfig::from_json(j), c);
  // Configs written before these fields existed read as before, and write the same JSON.
  ArchConfig old;
  const auto old_json = old.to_json();
  EXPECT_FALSE(old_json.contains("label_nc"));
  EXPECT_FALSE(old_json.contains("input_width"));
  EXPECT_EQ(ArchConfig::from_json(old_json).to_json(), old_json);
  EXPECT_EQ(nn::spade_training_size(spade_config("spade", 4, 6)), (std::pair<int64_t, int64_t>{256, 512}));
  EXPECT_EQ(nn::spade_training_size(c), (std::pair<int64_t, int64_t>{128, 256}));
}

TEST(Spade, ValidationNamesTheField) {
  auto message = [](ArchConfig c) {
    try {
      c.validate();
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string("(valid)");
  };
  ArchConfig c = spade_config("spade", 4, 6);
  EXPECT_EQ(message(c), "(valid)");
  c.label_nc = 7;
  EXPECT_NE(message(c).find("label_nc + 1"), std::string::npos) << message(c);
  c = spade_config("inception_spade", 4, 6);
  c.input_width = 100;
  EXPECT_NE(message(c).find("input_width must be a multiple of 64"), std::string::npos) << message(c);
  c = spade_config("spade", 4, 6, "instance_affine");
  EXPECT_NE(message(c).find("batch, instance"), std::string::npos) << message(c);
  c = pruned_inception_spade();
  c.widths.blocks.pop_back();
  EXPECT_NE(message(c).find("7 blocks"), std::string::npos) << message(c);
}

// The inference runner (eager steps for the SPADE blocks) against the eval-mode module: two fp32
// evaluations of one network.
TEST(Spade, InferenceRunnerMatchesTheModule) {
  for (const auto& c : {spade_config("spade", 4, 6), spade_config("inception_spade", 4, 6, "instance"),
                        pruned_inception_spade()}) {
    SCOPED_TRACE(c.to_json_string());
    auto g = nn::make_generator(c);
    unit_gain(*g, 3);
    g->eval();
    const auto x = label_map(5, 64, 128, 2);
    torch::Tensor want;
    {
      torch::NoGradGuard no_grad;
      want = g->forward(x);
    }
    nn::InferenceRunner runner(*g);
    const auto got = runner.forward(x);
    ASSERT_EQ(got.sizes(), want.sizes());
    ganlite::testing::expect_close(
        got, want, ganlite::testing::fp32_network_tolerance(*g, ganlite::testing::max_abs(want)), c.arch);
    EXPECT_GT(want.std().item<double>(), 0.05) << "degenerate test output";
  }
}

// CAT's one-step pruning of inception-SPADE (compress/prune.h with the family's student rule):
// the budget is met at the training resolution, the trunk follows fc_norm rounded to 16 channels,
// each branch keeps its first norm's survivors, and the student runs.
TEST(Spade, InceptionSpadePrunesToABudgetAtTheTrainingResolution) {
  ArchConfig c = spade_config("inception_spade", 4, 6);
  c.input_height = 64;
  c.input_width = 128;
  auto teacher = nn::make_generator(c);
  unit_gain(*teacher, 5);
  const auto norms = teacher->scored_norms();
  ASSERT_EQ(norms.front().name, "fc_norm");
  EXPECT_EQ(norms[1].name, "head_0.res_ops.0.0.norm");
  EXPECT_EQ(norms.back().name, "up_3.spade.dw_ops.2.0.norm");
  size_t branches = 0;  // at ngf 4, up_3's block branches are 4 // 6 = 0 wide: absent
  for (const auto& block : nn::inception_spade_default_widths(c)) {
    for (int w : block) branches += w > 0 ? 1 : 0;
  }
  EXPECT_EQ(branches, 7u * 12u - 6u);
  EXPECT_EQ(norms.size(), 1u + branches);

  const int64_t full = nn::inception_spade_counts(c, 64, 128, /*count_batchnorm=*/false).macs;
  compress::PruneOptions options;
  options.target_macs = static_cast<double>(full) / 3;
  options.min_channels = 1;
  const auto r = compress::prune_to_mac_budget(*teacher, options);
  EXPECT_LE(static_cast<double>(r.search_macs), options.target_macs);
  EXPECT_EQ(r.search_macs, nn::inception_spade_counts(r.config, 64, 128, false).macs);
  EXPECT_EQ(r.macs_after, nn::inception_spade_counts(r.config, 64, 128).macs);
  EXPECT_LT(r.macs_after, r.macs_before);
  EXPECT_TRUE(r.inherited);  // the teacher's kept channels (tests/compress/test_prune_spade.cpp)
  EXPECT_NO_THROW(r.config.validate());
  // Widths are the survivors of the threshold: the trunk rounded down to 16 channels.
  auto kept = [&](const nn::ScoredNorm& n) {
    return static_cast<int>((n.weight().abs() > r.threshold).sum().item<int64_t>());
  };
  EXPECT_EQ(r.config.ngf, std::clamp(kept(norms.front()) / 16, 1, 4));
  const auto widths = r.config.widths.empty() ? nn::inception_spade_default_widths(r.config) : r.config.widths.blocks;
  for (size_t i = 1; i < norms.size(); ++i) {
    EXPECT_EQ(widths[norms[i].block][norms[i].slot], kept(norms[i])) << norms[i].name;
  }
  torch::NoGradGuard no_grad;
  r.student->eval();
  EXPECT_EQ(r.student->forward(label_map(5, 64, 128, 3)).sizes(), (std::vector<int64_t>{1, 3, 64, 128}));
  // Keeping every channel gives the teacher's architecture back.
  EXPECT_EQ(compress::prune_at_threshold(*teacher, 0.0, options).config, c);
}

// `ganlite profile` counts a spade config at its training resolution (256x512 by default) and
// takes --label-nc and --input-size HxW.
TEST(Spade, ProfileCliUsesTheTrainingResolution) {
  const auto r = ganlite::testing::run_cli("profile --arch spade --label-nc 2 --ngf 1 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j.at("input_size"), nlohmann::json({256, 512}));
  ArchConfig c = spade_config("spade", 1, 3, "instance");
  EXPECT_EQ(j.at("macs").get<int64_t>(), nn::spade_counts(c, 256, 512).macs);
  const auto bad = ganlite::testing::run_cli("profile --arch inception_spade --label-nc 2 --ngf 1 --input-size 64x100");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("multiple of 64"), std::string::npos) << bad.output;
}
