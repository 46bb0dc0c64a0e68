// Unit tests of the training building blocks: losses, pool, schedule, config, optimizer state, logs.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "ganlite/train/gan_loss.h"
#include "ganlite/train/image_pool.h"
#include "ganlite/train/jsonl_log.h"
#include "ganlite/train/optimizer_state.h"
#include "ganlite/train/schedule.h"
#include "ganlite/train/task.h"
#include "ganlite/train/train_config.h"
#include "ganlite/util/error.h"
#include "test_support.h"

using namespace ganlite::train;
using ganlite::testing::TempDir;

TEST(GanLoss, LsganIsMseToOneOrZero) {
  GanLoss loss("lsgan");
  const auto pred = torch::tensor({0.5, 2.0});
  // real: ((0.5-1)^2 + (2-1)^2)/2 = 0.625; fake: (0.25 + 4)/2 = 2.125
  EXPECT_NEAR(loss(pred, true).item<double>(), 0.625, 1e-6);
  EXPECT_NEAR(loss(pred, false).item<double>(), 2.125, 1e-6);
  EXPECT_NEAR(loss(pred, true, false).item<double>(), 0.625, 1e-6);
}

TEST(GanLoss, VanillaIsBceWithLogits) {
  GanLoss loss("vanilla");
  const auto pred = torch::tensor({0.0, 1.0});
  const double real = (std::log(2.0) + std::log(1.0 + std::exp(-1.0))) / 2;
  const double fake = (std::log(2.0) + std::log(1.0 + std::exp(1.0))) / 2;
  EXPECT_NEAR(loss(pred, true).item<double>(), real, 1e-6);
  EXPECT_NEAR(loss(pred, false).item<double>(), fake, 1e-6);
}

TEST(GanLoss, HingeForDiscriminatorAndGenerator) {
  GanLoss loss("hinge");
  const auto pred = torch::tensor({-2.0, 0.5, 3.0});
  // D real: mean(relu(1 - p)) = (3 + 0.5 + 0)/3; D fake: mean(relu(1 + p)) = (0 + 1.5 + 4)/3; G: -mean(p)
  EXPECT_NEAR(loss(pred, true, true).item<double>(), 3.5 / 3, 1e-6);
  EXPECT_NEAR(loss(pred, false, true).item<double>(), 5.5 / 3, 1e-6);
  EXPECT_NEAR(loss(pred, true, false).item<double>(), -0.5, 1e-6);
}

TEST(GanLoss, UnknownModeNamesValidOnes) {
  try {
    GanLoss loss("wgan");
    FAIL() << "no error";
  } catch (const ganlite::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("wgan"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("hinge"), std::string::npos);
  }
}

TEST(ImagePool, FillsThenSwapsAboutHalf) {
  ImagePool pool(4, 7);
  std::vector<torch::Tensor> seen;
  for (int i = 0; i < 4; ++i) {
    const auto img = torch::full({1, 1, 2, 2}, static_cast<float>(i));
    EXPECT_TRUE(torch::equal(pool.query(img), img));  // not full yet: returned as is
  }
  EXPECT_EQ(pool.size(), 4);
  int from_history = 0;
  const int n = 400;
  for (int i = 0; i < n; ++i) {
    const auto img = torch::full({1, 1, 2, 2}, static_cast<float>(100 + i));
    const auto out = pool.query(img);
    if (!torch::equal(out, img)) {
      ++from_history;
      EXPECT_LT(out[0][0][0][0].item<float>(), 100.0f + i);  // an older image
    }
  }
  EXPECT_GT(from_history, n * 0.4);
  EXPECT_LT(from_history, n * 0.6);
  EXPECT_EQ(pool.size(), 4);
}

TEST(ImagePool, ZeroSizeReturnsInputAndBatchesKeepShape) {
  ImagePool none(0, 1);
  const auto img = torch::rand({3, 3, 4, 4});
  EXPECT_TRUE(torch::equal(none.query(img), img));
  ImagePool pool(2, 1);
  EXPECT_EQ(pool.query(img).sizes(), img.sizes());
}

TEST(ImagePool, SavedStateReplaysTheSameDraws) {
  ImagePool a(3, 11);
  for (int i = 0; i < 5; ++i) a.query(torch::rand({2, 3, 4, 4}));
  NamedTensors tensors;
  Metadata meta;
  a.save_state("pool", tensors, meta);
  ImagePool b(3, 999);
  b.load_state("pool", tensors, meta, torch::kCPU);
  for (int i = 0; i < 20; ++i) {
    const auto img = torch::rand({2, 3, 4, 4});
    EXPECT_TRUE(torch::equal(a.query(img), b.query(img)));
  }
  Metadata broken = meta;
  broken.erase("pool.rng");
  EXPECT_THROW(b.load_state("pool", tensors, broken, torch::kCPU), ganlite::Error);
}

TEST(Schedule, LinearRuleOfThePublicCode) {
  // n_epochs 100, decay 100: constant for epochs 0..99, then 1 - k/101.
  EXPECT_DOUBLE_EQ(linear_lr_factor(0, 100, 100), 1.0);
  EXPECT_DOUBLE_EQ(linear_lr_factor(99, 100, 100), 1.0);
  EXPECT_DOUBLE_EQ(linear_lr_factor(100, 100, 100), 1.0 - 1.0 / 101);
  EXPECT_NEAR(linear_lr_factor(199, 100, 100), 1.0 / 101, 1e-15);
  EXPECT_DOUBLE_EQ(linear_lr_factor(2, 2, 3), 0.75);
  EXPECT_DOUBLE_EQ(linear_lr_factor(4, 2, 3), 0.25);

  auto param = torch::zeros({2}, torch::requires_grad());
  torch::optim::Adam adam({param}, torch::optim::AdamOptions(2e-4));
  set_learning_rate(adam, 2e-4 * linear_lr_factor(150, 100, 100));
  EXPECT_NEAR(learning_rate(adam), 2e-4 * (1.0 - 51.0 / 101), 1e-15);
}

TEST(TrainConfig, JsonRoundTripKeepsEveryField) {
  TrainConfig c;
  c.task = "cyclegan";
  c.dataroot = "/data/h2z";
  c.generator.arch = "inception";
  c.generator.ngf = 24;
  c.generator.norm = "instance_affine";
  c.ndf = 32;
  c.netD = "n_layers";
  c.n_layers_D = 4;
  c.gan_mode = "hinge";
  c.lambda_identity = 0.25;
  c.lr = 1e-3;
  c.n_epochs = 7;
  c.batch_size = 3;
  c.no_flip = true;
  c.seed = 1234567890123ULL;
  c.max_iters = 55;
  c.save_latest_freq = 9;
  const auto text = c.to_json_string();
  const auto back = TrainConfig::from_json_string(text, "mem");
  EXPECT_EQ(back.to_json_string(), text);
  EXPECT_EQ(back.generator, c.generator);
  EXPECT_EQ(back.seed, c.seed);
  EXPECT_EQ(back.gan_mode, "hinge");
}

TEST(TrainConfig, ResolvesTaskDefaultsAndRejectsBadInput) {
  TrainConfig c;
  c.dataroot = "x";
  auto p = c.resolved();
  EXPECT_EQ(p.ndf, 128);
  EXPECT_EQ(p.gan_mode, "vanilla");
  c.task = "cyclegan";
  auto q = c.resolved();
  EXPECT_EQ(q.ndf, 64);
  EXPECT_EQ(q.gan_mode, "lsgan");
  EXPECT_NO_THROW(q.validate_config());

  auto bad = q;
  bad.netD = "huge";
  try {
    bad.validate_config();
    FAIL();
  } catch (const ganlite::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("pixel"), std::string::npos);
  }
  EXPECT_THROW(TrainConfig::from_json_string(R"({"lr_typo": 1})", "cfg.json"), ganlite::UsageError);
  EXPECT_THROW(TrainConfig::from_json_string(R"({"lr": "fast"})", "cfg.json"), ganlite::UsageError);
  try {
    TrainConfig::from_json_string("{not json", "cfg.json");
    FAIL();
  } catch (const ganlite::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("cfg.json"), std::string::npos);
  }
}

TEST(OptimizerState, AdamStateRoundTripContinuesIdentically) {
  torch::manual_seed(3);
  auto make = [] {
    torch::nn::Linear net(4, 3);
    return net;
  };
  auto a = make();
  auto b = make();
  for (size_t i = 0; i < a->parameters().size(); ++i) {
    torch::NoGradGuard g;
    b->parameters()[i].copy_(a->parameters()[i]);
  }
  torch::optim::Adam opt_a(a->parameters(), torch::optim::AdamOptions(0.01).betas({0.5, 0.999}));
  torch::optim::Adam opt_b(b->parameters(), torch::optim::AdamOptions(0.01).betas({0.5, 0.999}));
  const auto x = torch::rand({5, 4});
  auto step = [&](torch::nn::Linear& net, torch::optim::Adam& opt) {
    opt.zero_grad();
    net->forward(x).pow(2).sum().backward();
    opt.step();
  };
  for (int i = 0; i < 3; ++i) step(a, opt_a);
  NamedTensors saved;
  save_adam_state(opt_a, "opt", saved);
  EXPECT_EQ(saved.size(), 6u);  // 2 params x (step, exp_avg, exp_avg_sq)
  // b gets a's weights and moments, then both take the same steps.
  for (size_t i = 0; i < a->parameters().size(); ++i) {
    torch::NoGradGuard g;
    b->parameters()[i].copy_(a->parameters()[i]);
  }
  load_adam_state(opt_b, "opt", saved);
  for (int i = 0; i < 3; ++i) {
    step(a, opt_a);
    step(b, opt_b);
  }
  for (size_t i = 0; i < a->parameters().size(); ++i) EXPECT_TRUE(torch::equal(a->parameters()[i], b->parameters()[i]));

  NamedTensors wrong = saved;
  wrong[1].second = torch::zeros({7});
  EXPECT_THROW(load_adam_state(opt_b, "opt", wrong), ganlite::Error);
}

TEST(JsonlLog, FilterDropsLinesPastTheCheckpointAndTornLines) {
  TempDir dir;
  const auto path = dir / "metrics.jsonl";
  for (int step = 1; step <= 5; ++step) append_jsonl(path, nlohmann::json{{"step", step}});
  {
    std::ofstream torn(path, std::ios::app);
    torn << "{\"step\": 6, \"G_";  // a SIGKILL mid-write
  }
  const size_t dropped = filter_jsonl(path, [](const nlohmann::json& j) { return j["step"].get<int>() <= 3; });
  EXPECT_EQ(dropped, 3u);
  EXPECT_EQ(ganlite::testing::read_text_file(path), "{\"step\":1}\n{\"step\":2}\n{\"step\":3}\n");
}
