// Weight inheritance when pruning CAT's inception-SPADE generator (compress/prune.h with the
// family's slicing plan, nn/inception_spade_generator.cpp): a budget that keeps every channel
// gives the teacher back; with channels removed, the student's tensors are the teacher's slices at
// channel selections computed here from the teacher's tensors alone.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <nlohmann/json.hpp>

#include "ganlite/compress/prune.h"
#include "ganlite/data/synthetic.h"
#include "ganlite/io/safetensors.h"
#include "ganlite/io/checkpoint.h"
#include "ganlite/nn/generator.h"
#include "ganlite/nn/generator_family.h"
#include "ganlite/nn/inception_spade_generator.h"
#include "test_support.h"
#include "tolerance.h"

using namespace ganlite;
namespace fs = std::filesystem;

namespace {

constexpr int kSpadeTeacherNgf = 3;  // trunk 48; up_1 / up_2 block branches 2 / 1 wide, up_3's absent
constexpr int kSpadeLabels = 4;      // + the edge channel

nn::ArchConfig spade_prune_teacher_config(const std::string& norm) {
  nn::ArchConfig c;
  c.arch = "inception_spade";
  c.ngf = kSpadeTeacherNgf;
  c.input_nc = kSpadeLabels + 1;
  c.label_nc = kSpadeLabels;
  c.norm = norm;
  c.input_height = 64;
  c.input_width = 64;
  return c;
}

// Weights at unit gain, every norm scale in [0.5, 1.5] (none zero, so a zero threshold keeps all),
// random running statistics, so that a wrong slice of any of them shows in the output.
nn::Generator spade_prune_teacher(const std::string& norm, uint64_t seed) {
  auto g = nn::make_generator(spade_prune_teacher_config(norm));
  torch::NoGradGuard no_grad;
  torch::manual_seed(seed);
  for (auto& p : g->named_parameters()) {
    auto& t = p.value();
    if (t.dim() == 4) t.normal_(0, 1.0 / std::sqrt(static_cast<double>(t[0].numel())));
    if (t.dim() == 1) t.uniform_(0.5, 1.5);
    if (t.dim() == 1 && p.key().size() > 5 && p.key().substr(p.key().size() - 5) == ".bias") t.normal_(0, 0.1);
  }
  for (auto& b : g->named_buffers()) {
    const auto& key = b.key();
    if (key.find("running_mean") != std::string::npos) b.value().normal_(0, 0.2);
    if (key.find("running_var") != std::string::npos) b.value().uniform_(0.5, 1.5);
  }
  g->eval();
  return g;
}

// One-hot labels in 8x8 cells plus an edge channel (any 0/1 map serves here).
torch::Tensor spade_prune_labels(int64_t h, int64_t w, uint64_t seed) {
  torch::manual_seed(seed);
  const auto cells = torch::randint(0, kSpadeLabels, {1, 1, h / 8, w / 8}, torch::kLong);
  const auto labels = torch::upsample_nearest2d(cells.to(torch::kFloat), {h, w}).to(torch::kLong);
  const auto onehot = torch::zeros({1, kSpadeLabels, h, w}).scatter_(1, labels, 1.0);
  return torch::cat({onehot, torch::rand({1, 1, h, w}).gt(0.8).to(torch::kFloat)}, 1);
}

std::map<std::string, torch::Tensor> spade_state(const nn::GeneratorImpl& g) {
  std::map<std::string, torch::Tensor> s;
  for (const auto& p : g.named_parameters()) s[p.key()] = p.value().detach();
  for (const auto& b : g.named_buffers()) s[b.key()] = b.value().detach();
  return s;
}

// Ascending indices of the `k` largest entries of `score`.
torch::Tensor spade_top(const torch::Tensor& score, int64_t k) {
  return std::get<0>(std::get<1>(torch::topk(score.to(torch::kFloat64), k)).sort());
}

torch::Tensor spade_rows(const torch::Tensor& t, const torch::Tensor& out, const torch::Tensor& in = {}) {
  auto r = t.index_select(0, out);
  return in.defined() ? r.index_select(1, in) : r;
}

}  // namespace

TEST(PruneSpade, KeepingEveryChannelGivesTheTeachersWeightsAndOutput) {
  {  // "batch" (spadesyncbatch3x3, CAT's cityscapes): prune refuses norm "instance" (scored_norms_or_explain)
    const auto teacher = spade_prune_teacher("batch", 3);
    compress::PruneOptions options;
    options.min_channels = 1;
    const auto r = compress::prune_at_threshold(*teacher, 0.0, options);
    ASSERT_TRUE(r.inherited);
    EXPECT_EQ(r.config, teacher->config());
    const auto want = spade_state(*teacher), got = spade_state(*r.student);
    ASSERT_EQ(got.size(), want.size());
    for (const auto& [key, t] : want) {
      ASSERT_TRUE(got.count(key)) << key;
      EXPECT_TRUE(torch::equal(got.at(key), t)) << key;
    }
    torch::NoGradGuard no_grad;
    r.student->eval();
    const auto x = spade_prune_labels(64, 128, 5);
    const auto expected = teacher->forward(x);
    ganlite::testing::expect_close(
        r.student->forward(x), expected,
        ganlite::testing::fp32_network_tolerance(*teacher, ganlite::testing::max_abs(expected)), "student vs teacher");
    EXPECT_GT(expected.std().item<double>(), 0.05) << "degenerate test output";

    // --reinit keeps the architecture only.
    options.inherit_weights = false;
    const auto fresh = compress::prune_at_threshold(*teacher, 0.0, options);
    EXPECT_FALSE(fresh.inherited);
    EXPECT_FALSE(torch::equal(spade_state(*fresh.student).at("fc.weight"), want.at("fc.weight")));
  }
}

TEST(PruneSpade, RemovedChannelsKeepTheTeachersSlices) {
  const auto teacher = spade_prune_teacher("batch", 7);
  const auto t = spade_state(*teacher);
  const double threshold = 1.0;  // about half of the [0.5, 1.5] scales survive
  compress::PruneOptions options;
  options.min_channels = 1;
  const auto r = compress::prune_at_threshold(*teacher, threshold, options);
  ASSERT_TRUE(r.inherited);
  const auto s = spade_state(*r.student);
  const int64_t tnf = kSpadeTeacherNgf, snf = r.config.ngf;
  ASSERT_LT(snf, tnf) << "the test needs a narrower trunk";

  // Trunk: the 16 ngf channels of largest |gamma| of fc_norm.
  const auto trunk = spade_top(t.at("fc_norm.weight").abs(), 16 * snf);
  EXPECT_TRUE(torch::equal(s.at("fc.weight"), spade_rows(t.at("fc.weight"), trunk)));
  EXPECT_TRUE(torch::equal(s.at("fc.bias"), spade_rows(t.at("fc.bias"), trunk)));
  for (const char* k : {"weight", "bias", "running_mean", "running_var"}) {
    EXPECT_TRUE(torch::equal(s.at(std::string("fc_norm.") + k), spade_rows(t.at(std::string("fc_norm.") + k), trunk))) << k;
  }
  EXPECT_TRUE(torch::equal(s.at("fc_norm.num_batches_tracked"), t.at("fc_norm.num_batches_tracked")));

  // A branch keeps its first norm's survivors; head_0 keeps the trunk on both sides.
  auto survivors = [&](const std::string& norm) {
    return torch::nonzero(t.at(norm + ".weight").abs() > threshold).flatten();
  };
  const auto mid = survivors("head_0.res_ops.0.0.norm");
  ASSERT_GT(mid.numel(), 0);
  ASSERT_LT(mid.numel(), t.at("head_0.res_ops.0.0.norm.weight").numel());
  EXPECT_TRUE(torch::equal(s.at("head_0.res_ops.0.0.conv.weight"),
                           spade_rows(t.at("head_0.res_ops.0.0.conv.weight"), mid, trunk)));
  EXPECT_TRUE(torch::equal(s.at("head_0.res_ops.0.0.norm.running_var"),
                           spade_rows(t.at("head_0.res_ops.0.0.norm.running_var"), mid)));
  EXPECT_TRUE(torch::equal(s.at("head_0.res_ops.0.1.conv.weight"),
                           spade_rows(t.at("head_0.res_ops.0.1.conv.weight"), trunk, mid)));
  const auto dw_mid = survivors("head_0.dw_ops.1.0.norm");
  ASSERT_GT(dw_mid.numel(), 0);
  EXPECT_TRUE(torch::equal(s.at("head_0.dw_ops.1.1.conv.weight"), spade_rows(t.at("head_0.dw_ops.1.1.conv.weight"), dw_mid)));
  EXPECT_TRUE(torch::equal(s.at("head_0.dw_ops.1.1.norm.running_mean"),
                           spade_rows(t.at("head_0.dw_ops.1.1.norm.running_mean"), dw_mid)));

  // The SPADE: label map in (every channel), gamma and beta for the block input's channels.
  const int64_t fin = 16 * tnf;
  const auto gamma_beta = torch::cat({trunk, trunk + fin});
  const auto spade_mid = survivors("head_0.spade.res_ops.1.0.norm");
  ASSERT_GT(spade_mid.numel(), 0);
  EXPECT_TRUE(torch::equal(s.at("head_0.spade.res_ops.1.0.conv.weight"),
                           spade_rows(t.at("head_0.spade.res_ops.1.0.conv.weight"), spade_mid)));
  EXPECT_TRUE(torch::equal(s.at("head_0.spade.res_ops.1.1.weight"),
                           spade_rows(t.at("head_0.spade.res_ops.1.1.weight"), gamma_beta, spade_mid)));
  EXPECT_TRUE(torch::equal(s.at("head_0.spade.res_ops.1.1.bias"), spade_rows(t.at("head_0.spade.res_ops.1.1.bias"), gamma_beta)));
  EXPECT_TRUE(torch::equal(s.at("head_0.spade.param_free_norm.running_mean"),
                           spade_rows(t.at("head_0.spade.param_free_norm.running_mean"), trunk)));

  // Up blocks halve the width: their outputs keep the channels whose writing filters (branch
  // output convs, shortcut conv) have the largest L1 norm.
  torch::Tensor in = trunk;
  int64_t width = 16;
  for (const std::string block : {"up_0", "up_1", "up_2", "up_3"}) {
    width /= 2;
    torch::Tensor l1 = torch::zeros({width * tnf}, torch::kFloat64);
    for (const auto& [key, v] : t) {
      const bool writer = key.rfind(block + ".", 0) == 0 && key.find(".spade.") == std::string::npos &&
                          ((key.find(".res_ops.") != std::string::npos && key.find(".1.conv.weight") != std::string::npos) ||
                           (key.find(".dw_ops.") != std::string::npos && key.find(".2.conv.weight") != std::string::npos) ||
                           key == block + ".shortcut.1.conv.weight");
      if (writer) l1 += v.abs().sum({1, 2, 3}).to(torch::kFloat64);
    }
    const auto out = spade_top(l1, width * snf);
    EXPECT_TRUE(torch::equal(s.at(block + ".shortcut.1.conv.weight"), spade_rows(t.at(block + ".shortcut.1.conv.weight"), out, in)))
        << block;
    EXPECT_TRUE(torch::equal(s.at(block + ".shortcut.0.running_mean"), spade_rows(t.at(block + ".shortcut.0.running_mean"), in)))
        << block;
    in = out;
  }
  EXPECT_TRUE(torch::equal(s.at("conv_img.weight"), t.at("conv_img.weight").index_select(1, in)));
  EXPECT_TRUE(torch::equal(s.at("conv_img.bias"), t.at("conv_img.bias")));

}

// `ganlite prune` writes an inheriting student by default and says so; --reinit does not.
TEST(PruneSpade, CliReportsInheritedWeights) {
  ganlite::testing::TempDir dir;
  const auto teacher_path = (dir / "teacher.safetensors").string();
  io::save_generator(teacher_path, *spade_prune_teacher("batch", 4));
  const auto teacher = io::load_generator(teacher_path);
  const auto full = nn::generator_family("inception_spade").prune.macs(teacher->config(), false);
  const auto student_path = (dir / "student.safetensors").string();
  const std::string args = "prune --teacher " + teacher_path + " --target-macs " + std::to_string(full / 3) +
                           " --min-channels 1 --out " + student_path + " --json";
  auto r = ganlite::testing::run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(nlohmann::json::parse(r.output).at("weights"), "inherited");
  // The budget is counted at the teacher's training resolution (64x64 here), not --input-size's 256.
  EXPECT_EQ(nlohmann::json::parse(r.output).at("input_size"), 64);
  const auto student = io::load_generator(student_path);
  const auto trunk = spade_top(spade_state(*teacher).at("fc_norm.weight").abs(), 16 * student->config().ngf);
  EXPECT_TRUE(torch::equal(spade_state(*student).at("fc.weight"), spade_rows(spade_state(*teacher).at("fc.weight"), trunk)));
  r = ganlite::testing::run_cli(args + " --reinit");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(nlohmann::json::parse(r.output).at("weights"), "reinitialised");
}

namespace {

// The latest checkpoint's Adam moments of one optimizer (opt_<name>.*), paired by parameter.
std::vector<std::pair<torch::Tensor, torch::Tensor>> spade_adam_moments(const fs::path& run, const std::string& name) {
  const auto contents = io::load_safetensors(run / "checkpoints" / "latest.ckpt.safetensors");
  std::map<std::string, torch::Tensor> by_key;
  for (const auto& [key, t] : contents.tensors) by_key[key] = t;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> moments;
  const std::string prefix = "opt_" + name + ".", tail = ".exp_avg";
  for (const auto& [key, t] : by_key) {
    if (key.rfind(prefix, 0) != 0 || key.size() < tail.size() || key.substr(key.size() - tail.size()) != tail) continue;
    moments.emplace_back(t, by_key.at(key + "_sq"));
  }
  return moments;
}

// After one Adam step from zero moments, exp_avg = (1 - beta1) g and exp_avg_sq = (1 - beta2) g^2:
// their ratio (1 - beta2) / (1 - beta1)^2 is 0.1 for SPADE's betas (0, 0.9), 0.004 for (0.5, 0.999).
void expect_adam_betas_ratio(const fs::path& run, const std::string& name, double ratio) {
  const auto moments = spade_adam_moments(run, name);
  ASSERT_FALSE(moments.empty()) << name;
  for (const auto& [m, v] : moments) {
    const auto m64 = m.to(torch::kFloat64), v64 = v.to(torch::kFloat64);
    // fp32: each moment rounded once or twice (relative 2^-23 each).
    const double err = (v64 - ratio * m64 * m64).abs().max().item<double>();
    EXPECT_LE(err, 8 * ganlite::testing::kFp32Epsilon * v64.abs().max().item<double>() + 1e-30) << name;
  }
}

// The first Adam step moves every weight by lr * |g| / (|g| + eps): never more than lr, and lr
// itself wherever |g| >> eps, so the largest move over all weights is the lr the step used.
// Buffers (running statistics, spectral norm's u / v) are left out.
void expect_first_step_of_lr(const std::map<std::string, torch::Tensor>& before,
                             const std::map<std::string, torch::Tensor>& after, double lr, const std::string& what) {
  double largest = 0, largest_weight = 0;
  for (const auto& [key, b] : before) {
    if (!after.count(key) || !b.is_floating_point() || key.find("running_") != std::string::npos ||
        key.find("weight_u") != std::string::npos || key.find("weight_v") != std::string::npos) {
      continue;
    }
    largest = std::max(largest, (after.at(key).to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>());
    largest_weight = std::max(largest_weight, b.abs().max().item<double>());
  }
  // Rounding of the fp32 weights (one ulp of the largest) and Adam's eps on the largest gradient.
  const double bound = lr * 1e-3 + 2 * ganlite::testing::kFp32Epsilon * (largest_weight + lr);
  EXPECT_NEAR(largest, lr, bound) << what;
}

}  // namespace

// `ganlite distill --task spade` on a pruned inception-SPADE student steps with SPADE's TTUR, as
// CAT's spade distiller (load_pretrained_spade_student / shrink_spade_model): G at lr / 2, D at
// lr * 2, Adam betas (0, 0.9); --no-ttur: lr and (beta1, beta2) for both. Read from what one step
// did (weights moved, Adam moments saved), not from the config.
TEST(DistillSpade, OneStepUsesTtur) {
  ganlite::testing::TempDir dir;
  nn::ArchConfig c = spade_prune_teacher_config("batch");
  c.label_nc = 6;  // labels2scenes
  c.input_nc = 7;
  auto teacher = nn::make_generator(c);
  {
    torch::NoGradGuard no_grad;
    torch::manual_seed(2);
    for (auto& p : teacher->parameters()) {
      if (p.dim() == 1) p.uniform_(0.5, 1.5);
    }
  }
  io::save_generator(dir / "teacher.safetensors", *teacher);
  compress::PruneOptions options;
  options.min_channels = 1;
  const auto pruned = compress::prune_at_threshold(*teacher, 1.0, options);
  io::save_generator(dir / "student.safetensors", *pruned.student);
  data::SyntheticOptions d;
  d.kind = "labels2scenes";
  d.count = 2;
  d.test_count = 1;
  d.size = 64;
  d.threads = 1;
  data::make_synthetic_dataset(dir / "l2s", d);
  auto distill = [&](const std::string& run, const std::string& extra) {
    const auto r = ganlite::testing::run_cli(
        "distill --method ka --task spade --teacher '" + (dir / "teacher.safetensors").string() + "' --student '" +
        (dir / "student.safetensors").string() + "' --data '" + (dir / "l2s").string() +
        "' --preprocess fixed --crop-size 64 --aspect-ratio 1 --batch-size 2 --ndf 4 --lr 0.0002 "
        "--n-epochs 1 --n-epochs-decay 0 --max-iters 1 --threads 1 --workers 1 --seed 3 -q --out '" +
        (dir / run).string() + "'" + extra);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return dir / run;
  };
  const auto student_before = spade_state(*pruned.student);
  // Run 1 makes a D file; run 2 starts its D from it, so both sides' first step is known.
  const auto first = distill("first", "");
  const auto d_file = first / "checkpoints" / "latest_net_D.safetensors";
  ASSERT_TRUE(fs::exists(d_file));
  const auto d_before = io::load_safetensors(d_file).tensors;
  const auto ttur = distill("ttur", " --restore-d '" + d_file.string() + "'");
  expect_adam_betas_ratio(ttur, "G", 0.1);
  expect_adam_betas_ratio(ttur, "D", 0.1);
  expect_first_step_of_lr(student_before, spade_state(*io::load_generator(ttur / "checkpoints" / "latest_net_G.safetensors")),
                          1e-4, "G");
  auto as_map = [](const std::vector<std::pair<std::string, torch::Tensor>>& v) {
    return std::map<std::string, torch::Tensor>(v.begin(), v.end());
  };
  expect_first_step_of_lr(as_map(d_before), as_map(io::load_safetensors(ttur / "checkpoints" / "latest_net_D.safetensors").tensors),
                          4e-4, "D");

  const auto plain = distill("plain", " --no-ttur --beta1 0.5 --restore-d '" + d_file.string() + "'");
  expect_adam_betas_ratio(plain, "G", 0.001 / 0.25);
  expect_adam_betas_ratio(plain, "D", 0.001 / 0.25);
  expect_first_step_of_lr(student_before, spade_state(*io::load_generator(plain / "checkpoints" / "latest_net_G.safetensors")),
                          2e-4, "G --no-ttur");
  expect_first_step_of_lr(as_map(d_before), as_map(io::load_safetensors(plain / "checkpoints" / "latest_net_D.safetensors").tensors),
                          2e-4, "D --no-ttur");
}
