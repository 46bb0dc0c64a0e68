// Mixed-precision training (train/mixed_precision.h): the loss scaler's logic on synthetic
// gradients, autocast regions, the precision's checks and config field, fp32 steps unchanged bit
// for bit, and a bf16 pix2pix step against the fp32 one (where the CPU has native bf16).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "ganlite/nn/inference.h"
#include "ganlite/train/gan_loss.h"
#include "ganlite/train/mixed_precision.h"
#include "ganlite/train/networks.h"
#include "ganlite/train/pix2pix_task.h"
#include "ganlite/train/train_config.h"
#include "ganlite/train/trainer.h"
#include "ganlite/util/error.h"
#include "test_support.h"

using namespace ganlite::train;

namespace {

// One fp32 parameter with SGD(lr 1): a step moves it by exactly its (unscaled) gradient.
struct ScalerFixture {
  torch::Tensor param = torch::zeros({4}, torch::requires_grad());
  torch::optim::SGD sgd{std::vector<torch::Tensor>{param}, torch::optim::SGDOptions(1.0)};

  void set_grad(const torch::Tensor& g) { param.mutable_grad() = g.clone(); }
};

TrainConfig mp_tiny_pix2pix_config(const std::string& precision) {
  TrainConfig c;
  c.task = "pix2pix";
  c.dataroot = "unused";
  c.generator.arch = "resnet";
  c.generator.ngf = 4;
  c.generator.n_blocks = 1;
  c.ndf = 4;
  c.seed = 3;
  c.precision = precision;
  return c.resolved();
}

ganlite::data::Batch mp_batch(int64_t seed) {
  torch::manual_seed(seed);
  ganlite::data::Batch b;
  b.a = torch::rand({2, 3, 32, 32}) * 2 - 1;  // the 70x70 PatchGAN needs 32 pixels
  b.b = torch::rand({2, 3, 32, 32}) * 2 - 1;
  b.global_size = 2;
  return b;
}

std::vector<torch::Tensor> mp_parameters(TrainTask& task) {
  std::vector<torch::Tensor> params;
  for (const auto& [name, module] : task.modules()) {
    for (const auto& p : module->parameters()) params.push_back(p);
  }
  return params;
}

bool mp_bf16_trains_here() {
  const torch::Device cpu(torch::kCPU);
  return ganlite::nn::bf16_is_fast(cpu) && ganlite::nn::bf16_convs_run(cpu);
}

}  // namespace

TEST(LossScaler, DisabledPassesTheLossThroughAndAlwaysSteps) {
  ScalerFixture f;
  LossScaler scaler(false);
  const auto loss = torch::tensor(3.0f);
  EXPECT_TRUE(scaler.scale(loss).is_same(loss));
  f.set_grad(torch::full({4}, std::numeric_limits<float>::infinity()));
  EXPECT_TRUE(scaler.step(f.sgd));  // no check: fp32 / bf16 steps exactly as without a scaler
  EXPECT_TRUE(torch::isinf(f.param).all().item<bool>());
  scaler.update();
  EXPECT_EQ(scaler.scale_value(), 65536.0);
  std::map<std::string, std::string> meta;
  scaler.save_state(meta);
  EXPECT_TRUE(meta.empty());
}

TEST(LossScaler, ScalesUnscalesAndStepsOnFiniteGradients) {
  ScalerFixture f;
  LossScaler scaler(true);
  EXPECT_EQ(scaler.scale_value(), 65536.0);  // GradScaler's init_scale 2^16
  EXPECT_FLOAT_EQ(scaler.scale(torch::tensor(0.5f)).item<float>(), 32768.0f);
  const auto grad = torch::tensor({1.0f, -2.0f, 0.25f, 0.0f});
  f.set_grad(grad * 65536.0f);  // what backward of the scaled loss gives
  EXPECT_TRUE(scaler.step(f.sgd));
  EXPECT_TRUE(torch::equal(f.param.detach(), -grad));  // x 2^-16 is exact: the true gradient
  scaler.update();
  EXPECT_EQ(scaler.scale_value(), 65536.0);
  EXPECT_EQ(scaler.growth_tracker(), 1);
}

TEST(LossScaler, InfOrNanSkipsTheStepAndHalvesTheScale) {
  for (const float bad : {std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()}) {
    SCOPED_TRACE(bad);
    ScalerFixture f;
    LossScaler scaler(true);
    f.set_grad(torch::ones({4}));
    EXPECT_TRUE(scaler.step(f.sgd));
    scaler.update();
    ASSERT_EQ(scaler.growth_tracker(), 1);
    const auto before = f.param.detach().clone();
    f.set_grad(torch::tensor({1.0f, bad, 1.0f, 1.0f}));
    EXPECT_FALSE(scaler.step(f.sgd));
    EXPECT_TRUE(torch::equal(f.param.detach(), before));  // skipped
    EXPECT_EQ(scaler.skipped_steps(), 1);
    scaler.update();
    EXPECT_EQ(scaler.scale_value(), 32768.0);  // backoff 0.5
    EXPECT_EQ(scaler.growth_tracker(), 0);
  }
}

TEST(LossScaler, OneBadOptimizerInAnIterationBacksOffOnceAndTheOtherStillSteps) {
  ScalerFixture d, g;
  LossScaler scaler(true);
  d.set_grad(torch::full({4}, std::numeric_limits<float>::infinity()));
  g.set_grad(torch::ones({4}) * 65536.0f);
  EXPECT_FALSE(scaler.step(d.sgd));
  EXPECT_TRUE(scaler.step(g.sgd));
  EXPECT_TRUE(torch::equal(g.param.detach(), -torch::ones({4})));
  scaler.update();
  EXPECT_EQ(scaler.scale_value(), 32768.0);
  g.set_grad(torch::ones({4}));
  EXPECT_TRUE(scaler.step(g.sgd));
  scaler.update();  // the flag does not carry over to the next iteration
  EXPECT_EQ(scaler.scale_value(), 32768.0);
  EXPECT_EQ(scaler.growth_tracker(), 1);
}

TEST(LossScaler, GrowsAfterIntervalGoodIterationsAndABadOneRestartsTheCount) {
  LossScalerOptions options;
  options.growth_interval = 3;
  ScalerFixture f;
  LossScaler scaler(true, options);
  auto iteration = [&](float g) {
    f.set_grad(torch::full({4}, g));
    scaler.step(f.sgd);
    scaler.update();
  };
  iteration(1);
  iteration(1);
  EXPECT_EQ(scaler.scale_value(), 65536.0);
  iteration(std::numeric_limits<float>::infinity());
  EXPECT_EQ(scaler.scale_value(), 32768.0);
  iteration(1);
  iteration(1);
  EXPECT_EQ(scaler.scale_value(), 32768.0);
  EXPECT_EQ(scaler.growth_tracker(), 2);
  iteration(1);
  EXPECT_EQ(scaler.scale_value(), 65536.0);  // growth 2 after 3 good iterations in a row
  EXPECT_EQ(scaler.growth_tracker(), 0);
  EXPECT_EQ(LossScalerOptions{}.growth_interval, 2000);  // GradScaler's default interval
}

TEST(NonFiniteLossGuard, Fp16GoesOnThroughSkippedStepsAndStopsOnlyOnALongRun) {
  // fp32 and bf16 stop at the first non-finite loss, as before.
  for (const auto p : {TrainPrecision::fp32, TrainPrecision::bf16}) {
    NonFiniteLossGuard guard(p, 3);
    EXPECT_FALSE(guard.stop(true));
    EXPECT_TRUE(guard.stop(false));
  }
  // fp16: the scaler skipped those steps; 3 in a row end the run, a finite step resets the count.
  NonFiniteLossGuard guard(TrainPrecision::fp16, 3);
  EXPECT_FALSE(guard.stop(false));
  EXPECT_FALSE(guard.stop(false));
  EXPECT_FALSE(guard.stop(true));
  EXPECT_FALSE(guard.stop(false));
  EXPECT_FALSE(guard.stop(false));
  EXPECT_TRUE(guard.stop(false));
}

TEST(LossScaler, StateRoundTripsThroughCheckpointMetadata) {
  LossScalerOptions options;
  options.growth_interval = 10;
  LossScaler scaler(true, options);
  ScalerFixture f;
  f.set_grad(torch::full({4}, std::numeric_limits<float>::infinity()));
  scaler.step(f.sgd);
  scaler.update();
  for (int i = 0; i < 4; ++i) {
    f.set_grad(torch::ones({4}));
    scaler.step(f.sgd);
    scaler.update();
  }
  std::map<std::string, std::string> meta;
  scaler.save_state(meta);
  LossScaler restored(true, options);
  restored.load_state(meta);
  EXPECT_EQ(restored.scale_value(), 32768.0);
  EXPECT_EQ(restored.growth_tracker(), 4);
  LossScaler untouched(true);
  untouched.load_state({});  // a checkpoint written without scaling: defaults
  EXPECT_EQ(untouched.scale_value(), 65536.0);
  meta["loss_scale"] = "many";
  EXPECT_THROW(restored.load_state(meta), ganlite::Error);
}

TEST(Precision, NamesParseAndFp16OnCpuIsAUsageErrorNamingTheFlag) {
  EXPECT_EQ(parse_train_precision("bf16"), TrainPrecision::bf16);
  EXPECT_EQ(train_precision_name(parse_train_precision("fp16")), "fp16");
  try {
    parse_train_precision("fp8");
    FAIL() << "fp8 accepted";
  } catch (const ganlite::UsageError& e) {
    EXPECT_TRUE(ganlite::testing::contains(e.what(), "fp32")) << e.what();
    EXPECT_TRUE(ganlite::testing::contains(e.what(), "bf16")) << e.what();
  }
  try {
    check_precision_supported(TrainPrecision::fp16, torch::kCPU);
    FAIL() << "fp16 accepted on the CPU";
  } catch (const ganlite::UsageError& e) {
    EXPECT_TRUE(ganlite::testing::contains(e.what(), "--precision fp16")) << e.what();
    EXPECT_TRUE(ganlite::testing::contains(e.what(), "CUDA")) << e.what();
  }
  EXPECT_NO_THROW(check_precision_supported(TrainPrecision::fp32, torch::kCPU));
  // A task refuses it when built, before any step.
  EXPECT_THROW(make_task(mp_tiny_pix2pix_config("fp16"), torch::kCPU), ganlite::UsageError);
}

TEST(Precision, Bf16OnTheCpuFollowsItsNativeSupport) {
  if (mp_bf16_trains_here()) {
    EXPECT_NO_THROW(check_precision_supported(TrainPrecision::bf16, torch::kCPU));
    return;
  }
  try {
    check_precision_supported(TrainPrecision::bf16, torch::kCPU);
    FAIL() << "bf16 accepted on a CPU without native bf16";
  } catch (const ganlite::UsageError& e) {
    EXPECT_TRUE(ganlite::testing::contains(e.what(), "--precision bf16")) << e.what();
  }
}

TEST(Precision, ConfigWritesTheFieldOnlyWhenNotFp32AndOldConfigsReadAsFp32) {
  TrainConfig c;
  c.dataroot = "d";
  const auto fp32_json = c.to_json();
  EXPECT_FALSE(fp32_json.contains("precision"));  // fp32 runs' config.json as before
  EXPECT_EQ(TrainConfig::from_json(fp32_json).precision, "fp32");
  c.precision = "bf16";
  const auto j = c.to_json();
  EXPECT_EQ(j.at("precision"), "bf16");
  EXPECT_EQ(TrainConfig::from_json(j).precision, "bf16");
  c.precision = "half";
  try {
    c.resolved().validate_config();
    FAIL() << "precision 'half' accepted";
  } catch (const ganlite::UsageError& e) {
    EXPECT_TRUE(ganlite::testing::contains(e.what(), "precision")) << e.what();
  }
}

TEST(AutocastRegion, CastsConvsInsideRestoresTheStateAfterAndFp32DoesNothing) {
  const auto x = torch::randn({1, 4, 8, 8});
  const auto w = torch::randn({4, 4, 3, 3});
  {
    const AutocastRegion region(TrainPrecision::fp32, torch::kCPU);
    EXPECT_EQ(torch::conv2d(x, w).scalar_type(), torch::kFloat);
  }
  if (!mp_bf16_trains_here()) GTEST_SKIP() << "no native bf16 on this CPU";
  {
    const AutocastRegion outer(TrainPrecision::bf16, torch::kCPU);
    {
      const AutocastRegion inner(TrainPrecision::bf16, torch::kCPU);
      EXPECT_EQ(torch::conv2d(x, w).scalar_type(), torch::kBFloat16);
    }
    EXPECT_EQ(torch::conv2d(x, w).scalar_type(), torch::kBFloat16);  // the outer region still holds
    EXPECT_EQ(to_fp32(torch::conv2d(x, w)).scalar_type(), torch::kFloat);
  }
  EXPECT_EQ(torch::conv2d(x, w).scalar_type(), torch::kFloat);
  EXPECT_TRUE(to_fp32(x).is_same(x));
}

// The pix2pix step as it was before mixed precision (no regions, no scaler): an fp32 step of
// the task must leave every parameter bit-identical to it.
TEST(Precision, Fp32Pix2PixStepIsBitIdenticalToThePlainStep) {
  const TrainConfig c = mp_tiny_pix2pix_config("fp32");
  auto task = make_task(c, torch::kCPU);
  auto plain = make_task(c, torch::kCPU);
  auto& p = dynamic_cast<Pix2PixTask&>(*plain);
  auto generator = p.sample_generator();
  auto discriminator = p.discriminator();
  auto optimizers = p.optimizers();
  torch::optim::Optimizer& optimizer_g = *optimizers[0].second;
  torch::optim::Optimizer& optimizer_d = *optimizers[1].second;
  const GanLoss gan_loss(c.gan_mode);
  for (int step = 0; step < 2; ++step) {
    const auto batch = mp_batch(10 + step);
    const Losses losses = task->train_step(batch);

    const auto fake_b = generator->forward(batch.a);
    set_requires_grad(*discriminator, true);
    optimizer_d.zero_grad();
    const auto loss_d_fake = gan_loss(discriminator->forward(torch::cat({batch.a, fake_b}, 1).detach()), false, true);
    const auto loss_d_real = gan_loss(discriminator->forward(torch::cat({batch.a, batch.b}, 1)), true, true);
    ((loss_d_fake + loss_d_real) * 0.5).backward();
    optimizer_d.step();
    set_requires_grad(*discriminator, false);
    optimizer_g.zero_grad();
    const auto loss_g_gan = gan_loss(discriminator->forward(torch::cat({batch.a, fake_b}, 1)), true, false);
    const auto loss_g_l1 = torch::l1_loss(fake_b, batch.b) * c.lambda_L1;
    (loss_g_gan + loss_g_l1).backward();
    optimizer_g.step();
    set_requires_grad(*discriminator, true);

    EXPECT_EQ(losses[0].second, loss_g_gan.item<double>());
    EXPECT_EQ(losses[1].second, loss_g_l1.item<double>());
  }
  const auto a = mp_parameters(*task);
  const auto b = mp_parameters(*plain);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "parameter " << i;
}

// Tolerance: bf16 keeps 8 significant bits, so rounding an operand costs a relative error of at
// most u = 2^-8. Autocast rounds both operands (activation and weight) of each conv, with fp32
// accumulation: to first order each conv adds <= 2u relative error, and the norms and
// activations between them do not amplify it (1-Lipschitz, or dividing by a std that carries the
// same relative error). A loss on the output of L casted convs is off by <= 2uL relative; L is
// counted as the 4-d weights of G and D (every loss's path is within G then D).
TEST(Precision, Bf16Pix2PixStepKeepsFp32MasterWeightsAndLossesCloseToFp32) {
  if (!mp_bf16_trains_here()) GTEST_SKIP() << "no native bf16 on this CPU (avx512_bf16 / amx_bf16)";
  auto fp32 = make_task(mp_tiny_pix2pix_config("fp32"), torch::kCPU);
  auto bf16 = make_task(mp_tiny_pix2pix_config("bf16"), torch::kCPU);
  std::vector<torch::Tensor> before;
  int64_t convs = 0;
  for (const auto& p : mp_parameters(*bf16)) {
    before.push_back(p.detach().clone());
    if (p.dim() == 4) ++convs;
  }
  ASSERT_GE(convs, 8);
  const auto batch = mp_batch(21);
  const Losses reference = fp32->train_step(batch);
  const Losses mixed = bf16->train_step(batch);
  const double tolerance = 2.0 * std::ldexp(1.0, -8) * static_cast<double>(convs);
  ASSERT_EQ(mixed.size(), reference.size());
  double largest_relative = 0;
  for (size_t i = 0; i < mixed.size(); ++i) {
    SCOPED_TRACE(mixed[i].first);
    EXPECT_TRUE(std::isfinite(mixed[i].second));
    EXPECT_NEAR(mixed[i].second, reference[i].second, tolerance * std::abs(reference[i].second));
    largest_relative = std::max(largest_relative, std::abs(mixed[i].second / reference[i].second - 1));
  }
  EXPECT_GT(largest_relative, 0.0) << "the bf16 step computed exactly the fp32 losses: autocast did not act";
  RecordProperty("largest_relative_loss_difference", std::to_string(largest_relative));
  const auto after = mp_parameters(*bf16);
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(after[i].scalar_type(), torch::kFloat) << "parameter " << i;  // fp32 master weights
    // Adam's first step moves every weight with a nonzero gradient by about lr: every conv kernel.
    if (after[i].dim() == 4) {
      EXPECT_FALSE(torch::equal(after[i], before[i])) << "parameter " << i;
    }
  }
}

TEST(Precision, TrainCommandRefusesFp16OnTheCpuAsAUsageError) {
  ganlite::testing::TempDir dir;
  const auto r = ganlite::testing::run_cli("train --task pix2pix --data '" + (dir / "data").string() +
                                           "' --precision fp16 --out '" + (dir / "run").string() + "' -q");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_TRUE(ganlite::testing::contains(r.output, "--precision fp16")) << r.output;
}
