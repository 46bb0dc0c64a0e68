// Step parity with the reference code (docs/fidelity.md, "Step parity"): ganlite's training steps
// (Pix2PixTask, CycleGanTask, DistillTask with ka / mse / wkd, as the Trainer builds them) against
// independent PyTorch scripts written from the public code (tests/parity/*.py), K = 3 steps from
// the same weights on the same fixed batches, in float64 on both sides.
//
// Tolerance: 1e-6 relative for every loss of every step and every tensor after K steps. Both
// sides compute the same real-number function in float64 (unit roundoff 1.1e-16) by different
// code paths (LibTorch C++ vs PyTorch Python, same kernels or not); rounding differences of
// ~1e-16 times the reduction lengths (< 1e4 here) amplified through 3 Adam steps stay many orders
// below 1e-6, while any difference in what is computed (a term, a weight, an order of updates,
// a reduction) moves losses and weights by far more than 1e-6 (Adam moves every weight by ~lr
// per step, 1e-3 to 1e-2 of its magnitude). Weights are compared relative to the tensor's
// largest magnitude, floored at lr; tensors whose gradient is zero up to rounding (the frozen
// teacher, conv biases a norm cancels) must stay untrained on both sides instead, since Adam
// amplifies rounding noise below its eps by lr / eps (parity_harness.h, Tolerance).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "ganlite/compress/distill_task.h"
#include "ganlite/io/checkpoint.h"
#include "ganlite/nn/discriminator.h"
#include "ganlite/nn/generator.h"
#include "ganlite/train/cyclegan_task.h"
#include "ganlite/train/networks.h"
#include "ganlite/train/pix2pix_task.h"
#include "parity_harness.h"
#include "test_support.h"

namespace ganlite {
namespace {

using parity::kSize;
using parity::kSteps;

train::TrainConfig tiny_config(const std::string& task, int batch_size) {
  train::TrainConfig c;
  c.task = task;
  c.dataroot = "unused-by-the-step";
  c.ndf = 4;
  c.batch_size = batch_size;
  c.load_size = kSize;
  c.crop_size = kSize;
  c.lr = 2e-3;  // larger than 2e-4 so that K steps move the weights well beyond rounding
  c.seed = 15;
  return c;
}

nn::ArchConfig arch(const std::string& name, int ngf, const std::string& norm, int n_blocks = 3) {
  nn::ArchConfig a;
  a.arch = name;
  a.ngf = ngf;
  a.n_blocks = n_blocks;
  a.num_downs = 5;  // unet: 32 -> 1
  a.norm = norm;
  return a;
}

// The settings every script reads: D, GAN mode, Adam.
nlohmann::json common_settings(const train::TrainConfig& resolved) {
  const auto d = train::discriminator_config_of(resolved, 3);
  return {{"discriminator", {{"ndf", d.ndf}, {"n_layers", d.n_layers}, {"norm", d.norm}}},
          {"gan_mode", resolved.gan_mode},
          {"lr", resolved.lr},
          {"beta1", resolved.beta1},
          {"beta2", resolved.beta2}};
}

parity::Tolerance float64_tolerance(double lr) {
  parity::Tolerance tol;
  tol.weight_floor = lr;
  tol.untrained_move = 1e-3 * lr;
  return tol;
}

// pytorch-CycleGAN-and-pix2pix's setting: U-Net with BatchNorm (G and D), vanilla GAN, L1 x 100.
TEST(StepParity, Pix2PixMatchesPix2PixModel) {
  SKIP_WITHOUT_REFERENCE();
  auto config = tiny_config("pix2pix", 2);
  config.generator = arch("unet", 4, "batch");
  config.norm_D = "batch";
  torch::manual_seed(config.seed);
  train::Pix2PixTask task(config, torch::kCPU);
  const parity::NamedModules modules = task.modules();
  parity::to_double(modules);
  const auto resolved = config.resolved();
  auto settings = common_settings(resolved);
  settings["generator"] = resolved.generator.to_json();
  settings["lambda_L1"] = resolved.lambda_L1;
  parity::check_parity(task, modules, parity::fixed_batches(kSteps, 2, kSize, 1), "parity_pix2pix.py", settings,
                       float64_tolerance(resolved.lr), "pix2pix");
}

// CycleGAN: ResNet generators, InstanceNorm, LSGAN, cycle 10, identity 0.5, history pools of 50
// (never full in 3 steps of 2 images: they return the fakes, as the public pool does then).
TEST(StepParity, CycleGanMatchesCycleGanModel) {
  SKIP_WITHOUT_REFERENCE();
  auto config = tiny_config("cyclegan", 2);
  config.generator = arch("resnet", 4, "instance", 2);
  torch::manual_seed(config.seed);
  train::CycleGanTask task(config, torch::kCPU);
  const parity::NamedModules modules = task.modules();
  parity::to_double(modules);
  const auto resolved = config.resolved();
  ASSERT_GE(resolved.pool_size, 2 * kSteps);
  auto settings = common_settings(resolved);
  settings["generator"] = resolved.generator.to_json();
  settings["lambda_A"] = resolved.lambda_A;
  settings["lambda_B"] = resolved.lambda_B;
  settings["lambda_identity"] = resolved.lambda_identity;
  settings["pool_size"] = resolved.pool_size;
  parity::check_parity(task, modules, parity::fixed_batches(kSteps, 2, kSize, 2), "parity_cyclegan.py", settings,
                       float64_tolerance(resolved.lr), "cyclegan");
}

struct DistillCase {
  std::string task;
  std::string method;
  nn::ArchConfig teacher, student;
  int batch_size = 2;
  std::map<std::string, compress::OptionValue> options;
};

struct BuiltDistill {
  std::unique_ptr<train::TrainTask> owned;
  compress::DistillTask* task = nullptr;
  nlohmann::json settings;
  parity::NamedModules modules;
  double lr = 0;
};

// Builds the DistillTask as `ganlite distill` does (files, run config, seeded factory), in float64,
// with the settings its script reads.
BuiltDistill build_distill(const DistillCase& c) {
  testing::TempDir dir;
  torch::manual_seed(21);
  const auto teacher = nn::make_generator(c.teacher);
  const auto student = nn::make_generator(c.student);
  io::save_generator(dir / "teacher.safetensors", *teacher);
  io::save_generator(dir / "student.safetensors", *student);
  compress::DistillConfig d;
  d.methods = compress::parse_distill_methods(c.method);
  d.teacher = (dir / "teacher.safetensors").string();
  d.student = (dir / "student.safetensors").string();
  for (const auto& [key, value] : c.options) d.set_option(key, value);
  const auto run = compress::make_distill_run_config(tiny_config(c.task, c.batch_size), d);
  BuiltDistill b;
  b.owned = compress::make_distill_task(run, torch::kCPU, /*fresh_start=*/true);
  b.task = &dynamic_cast<compress::DistillTask&>(*b.owned);
  auto& task = *b.task;
  const auto resolved = run.train.resolved();
  b.lr = resolved.lr;
  const auto& dc = task.distill_config();
  auto settings = common_settings(resolved);
  settings["discriminator"]["norm"] = resolved.norm_D;
  settings["paired"] = c.task == train::kPix2PixTask;
  settings["teacher"] = task.teacher()->config().to_json();
  settings["student"] = task.student()->config().to_json();
  settings["lambda_recon"] = dc.lambda_recon;
  settings["lambda_gan"] = dc.lambda_gan;
  settings["weight"] = dc.weights.at(c.method);
  settings["teacher_tap_channels"] = compress::tap_channels(*task.teacher(), kSize, torch::kCPU);
  settings["student_tap_channels"] = compress::tap_channels(*task.student(), kSize, torch::kCPU);
  for (const auto& [key, value] : c.options) {
    std::visit([&, k = key](const auto& v) { settings[k] = v; }, value);
  }
  b.settings = settings;
  b.modules = task.modules();
  parity::to_double(b.modules);
  return b;
}

// Checks the DistillTask of `c` against `script` (extra_settings: script-only switches).
void check_distill_parity(const DistillCase& c, const std::string& script,
                          const nlohmann::json& extra_settings = nlohmann::json::object()) {
  auto b = build_distill(c);
  b.settings.update(extra_settings);
  parity::check_parity(*b.task, b.modules, parity::fixed_batches(kSteps, c.batch_size, kSize, 3), script, b.settings,
                       float64_tolerance(b.lr), c.method + " (" + c.task + ")");
}

// CAT's setting for CycleGAN horse2zebra: inception teacher and student with affine
// InstanceNorm, LSGAN, recon to T(A) x 5; KA over 2 chunks of a batch of 4 (the DataParallel sum).
TEST(StepParity, KaMatchesCatsInceptionDistiller) {
  SKIP_WITHOUT_REFERENCE();
  DistillCase c{"cyclegan", "ka", arch("inception", 8, "instance_affine"), arch("inception", 4, "instance_affine"),
                4, {{"ka_chunks", int64_t{2}}}};
  check_distill_parity(c, "parity_ka.py");
}

// GAN Compression's setting for pix2pix: ResNet teacher, mobile ResNet student, learned adaptors,
// in the release's step order (D's and G's backward against the same D, then both steps).
TEST(StepParity, MseMatchesGanCompressionsResnetDistiller) {
  SKIP_WITHOUT_REFERENCE();
  DistillCase c{"pix2pix", "mse", arch("resnet", 8, "instance"), arch("mobile_resnet", 4, "instance"), 2, {}};
  check_distill_parity(c, "parity_mse.py", {{"order", "release"}});
}

// The step order is a method's declaration: only mse takes GAN Compression's; a mix follows CAT.
TEST(StepOrder, OnlyMseDeclaresGanCompressionsOrder) {
  for (const auto& m : compress::distill_methods()) {
    SCOPED_TRACE(m.name);
    EXPECT_EQ(m.update_order == compress::UpdateOrder::kSimultaneous, m.name == "mse");
  }
  EXPECT_EQ(compress::run_update_order({"mse"}), compress::UpdateOrder::kSimultaneous);
  EXPECT_EQ(compress::run_update_order({"mse", "ka"}), compress::UpdateOrder::kDiscriminatorFirst);
  EXPECT_EQ(compress::run_update_order({}), compress::UpdateOrder::kDiscriminatorFirst);
}

double max_relative_gap(const torch::Tensor& a, const torch::Tensor& b, double floor) {
  if (a.numel() == 0) return 0;
  return (a - b).abs().max().item<double>() / std::max(b.abs().max().item<double>(), floor);
}

// One mse step: the release's order and CAT's give different G losses and student weights (so
// the parity above tells them apart), and ganlite's step equals the release's.
TEST(StepParity, MseStepOrderIsTheReleasesNotCats) {
  SKIP_WITHOUT_REFERENCE();
  DistillCase c{"pix2pix", "mse", arch("resnet", 8, "instance"), arch("mobile_resnet", 4, "instance"), 2, {}};
  auto b = build_distill(c);
  ASSERT_EQ(b.task->update_order(), compress::UpdateOrder::kSimultaneous);
  const auto batches = parity::fixed_batches(1, c.batch_size, kSize, 3);
  const auto initial = parity::state_of(b.modules);
  parity::StepLog ours = parity::run_steps(*b.task, b.modules, batches);
  ours.initial_state = initial;
  testing::TempDir release_dir, cat_dir;
  auto settings = b.settings;
  settings["order"] = "release";
  const auto release = parity::run_reference("parity_mse.py", release_dir.path(), initial, batches, settings);
  settings["order"] = "cat";
  const auto cat = parity::run_reference("parity_mse.py", cat_dir.path(), initial, batches, settings);
  ASSERT_EQ(release.losses.size(), 1u);
  ASSERT_EQ(cat.losses.size(), 1u);
  const auto tol = float64_tolerance(b.lr);
  parity::expect_parity(ours, release, tol, "mse, one step, the release's order");

  // CAT's order computes G's GAN loss against the stepped D: the step's G_gan already differs.
  const double g_gan = release.losses[0].at("G_gan"), g_gan_cat = cat.losses[0].at("G_gan");
  EXPECT_GT(std::abs(g_gan - g_gan_cat) / std::abs(g_gan), 1e3 * tol.loss) << g_gan << " vs " << g_gan_cat;
  double student_gap = 0, d_gap = 0;
  for (const auto& [key, t] : release.final_state) {
    const double gap = max_relative_gap(cat.final_state.at(key), t, tol.weight_floor);
    if (key.rfind("G.", 0) == 0) student_gap = std::max(student_gap, gap);
    if (key.rfind("D.", 0) == 0) d_gap = std::max(d_gap, gap);
  }
  EXPECT_GT(student_gap, 1e3 * tol.weight);  // G learns from a different D
  EXPECT_LT(d_gap, tol.weight);              // D's own step is the same in both orders
}

// WKD's setting: ResNet teacher and narrower ResNet student, CycleGAN direction A -> B, Haar
// J = 3 on 32x32 outputs, L1 (the paper's distance) and MSE (the release's training code).
TEST(StepParity, WkdMatchesTheReleasesWaveletLoss) {
  SKIP_WITHOUT_REFERENCE();
  for (const std::string distance : {"l1", "mse"}) {
    SCOPED_TRACE(distance);
    DistillCase c{"cyclegan", "wkd", arch("resnet", 8, "instance"), arch("resnet", 4, "instance"), 2,
                  {{"wkd_levels", int64_t{3}}, {"wkd_distance", distance}}};
    check_distill_parity(c, "parity_wkd.py");
  }
}

}  // namespace
}  // namespace ganlite
