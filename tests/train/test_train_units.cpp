// Unit tests of the training building blocks: losses, pool, schedule, config, optimizer state, logs.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "ganlite/train/gan_loss.h"
#include "ganlite/train/image_pool.h"
#include "ganlite/train/jsonl_log.h"
#include "ganlite/train/optimizer_state.h"
#include "ganlite/train/run_folder.h"
#include "ganlite/nn/discriminator_registry.h"
#include "ganlite/train/schedule.h"
#include "ganlite/train/task.h"
#include "ganlite/train/task_registry.h"
#include "ganlite/train/train_config.h"
#include "ganlite/train/trainer.h"
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

// pix2pixHD / SPADE's GANLoss on a multi-scale D: the mean of the scales' losses. One scale is
// exactly its prediction map's loss (the single-scale runs stay bit-identical).
TEST(GanLoss, OverScalesIsTheMeanOfThePerScaleLosses) {
  torch::manual_seed(5);
  ganlite::nn::DiscriminatorOutput two;
  two.scales.resize(2);
  two.scales[0].logits = torch::randn({2, 1, 6, 6});
  two.scales[1].logits = torch::randn({2, 1, 3, 3}) * 3;  // a coarser scale, further from 0
  ganlite::nn::DiscriminatorOutput one;
  one.scales.push_back(two.scales[0]);
  for (const auto& mode : valid_gan_modes()) {
    GanLoss loss(mode);
    for (const bool for_discriminator : {true, false}) {
      for (const bool real : {true, false}) {
        if (mode == "hinge" && !for_discriminator && !real) continue;  // the hinge G loss only targets real
        SCOPED_TRACE(mode + (for_discriminator ? " D" : " G") + (real ? " real" : " fake"));
        const double a = loss(two.scales[0].logits, real, for_discriminator).item<double>();
        const double b = loss(two.scales[1].logits, real, for_discriminator).item<double>();
        // fp32: the sum and the halving each round once, on values of size |a| + |b|.
        const double tol = 4 * std::numeric_limits<float>::epsilon() * (std::abs(a) + std::abs(b) + 1);
        EXPECT_NEAR(loss(two, real, for_discriminator).item<double>(), (a + b) / 2, tol);
        EXPECT_GT(std::abs(a - b), 100 * tol);  // the scales differ: a sum or one scale alone would fail
        EXPECT_TRUE(torch::equal(loss(one, real, for_discriminator),
                                 loss(two.scales[0].logits, real, for_discriminator)));
      }
    }
  }
  EXPECT_THROW(GanLoss("lsgan")(ganlite::nn::DiscriminatorOutput{}, true), ganlite::Error);
}

// Each registered task builds its TrainTask under its own name; a paired task's D is conditional
// (sees A and B: 6 channels), an unpaired task's judges B images alone (3).
TEST(TaskRegistry, EveryTaskBuildsItsTaskWithItsDiscriminatorInput) {
  ASSERT_FALSE(task_kinds().empty());
  EXPECT_EQ(valid_tasks(), task_names());
  for (const auto& kind : task_kinds()) {
    SCOPED_TRACE(kind.name);
    EXPECT_FALSE(kind.description.empty());
    TrainConfig c;
    c.task = kind.name;
    c.dataroot = "unused";
    c.generator.ngf = 4;
    c.generator.n_blocks = 1;
    c.ndf = 4;
    if (kind.label_maps) c.generator.label_nc = 5;  // one-hot classes plus the instance-edge channel
    const TrainConfig resolved = c.resolved();
    EXPECT_EQ(resolved.gan_mode, kind.default_gan_mode);
    EXPECT_EQ(resolved.netD, kind.default_net_d);
    // Paired tasks judge input and image together: 3 + 3, or label_nc + 1 + 3 for label maps.
    const int d_input = kind.label_maps ? 5 + 1 + 3 : (kind.paired ? 6 : 3);
    EXPECT_EQ(discriminator_input_nc(resolved), d_input);
    auto task = make_task(resolved, torch::kCPU);
    EXPECT_EQ(task->name(), kind.name);
    int discriminators = 0;
    for (const auto& [name, module] : task->modules()) {
      if (name.rfind("D", 0) != 0) continue;
      ++discriminators;
      // The first conv's weight is the D's first parameter ("model.0.weight", "discriminator_0.model0.0.weight").
      const auto params = module->named_parameters();
      ASSERT_FALSE(params.is_empty()) << name;
      ASSERT_EQ(params[0].value().dim(), 4) << name << " " << params[0].key();
      EXPECT_EQ(params[0].value().size(1), d_input) << name << " " << params[0].key();
    }
    EXPECT_GT(discriminators, 0);
  }
}

TEST(TaskRegistry, UnknownTaskOrNetDNamesTheValidOnes) {
  auto expect_names = [](const std::function<void()>& run, const std::string& bad,
                         const std::vector<std::string>& valid) {
    try {
      run();
      FAIL() << "no error for " << bad;
    } catch (const ganlite::UsageError& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find("'" + bad + "'"), std::string::npos) << message;
      for (const auto& name : valid) EXPECT_NE(message.find(name), std::string::npos) << message;
    }
  };
  TrainConfig c;
  c.dataroot = "unused";
  c.task = "semantic";
  EXPECT_EQ(find_task_kind("semantic"), nullptr);
  expect_names([&] { make_task(c, torch::kCPU); }, "semantic", task_names());
  expect_names([&] { c.resolved().validate_config(); }, "semantic", task_names());
  c.task = task_names().front();
  c.netD = "multiscale_3d";
  expect_names([&] { c.resolved().validate_config(); }, "multiscale_3d", ganlite::nn::discriminator_kind_names());
  EXPECT_EQ(ganlite::nn::discriminator_kind_names(), valid_net_ds());
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

// Every field set away from its default, written, read back, compared field by field and
// found under its own key: a field left out of the JSON, read from another key or misspelt fails.
TEST(TrainConfig, JsonRoundTripKeepsEveryFieldUnderItsOwnKey) {
  const TrainConfig defaults;
  TrainConfig c;
  c.task = "cyclegan";
  c.dataroot = "/data/h2z";
  c.direction = "BtoA";
  c.generator.arch = "mobile_resnet";
  c.generator.ngf = 24;
  c.generator.n_blocks = 6;
  c.generator.norm = "batch";
  c.generator.padding = "replicate";
  c.generator.dropout = 0.25;
  c.ndf = 32;
  c.netD = "n_layers";
  c.n_layers_D = 4;
  c.norm_D = "batch";
  c.gan_mode = "hinge";
  c.init_type = "xavier";
  c.init_gain = 0.03;
  c.lambda_L1 = 50.0;
  c.lambda_A = 7.5;
  c.lambda_B = 8.5;
  c.lambda_identity = 0.25;
  c.pool_size = 20;
  c.lr = 1e-3;
  c.beta1 = 0.6;
  c.beta2 = 0.99;
  c.n_epochs = 7;
  c.n_epochs_decay = 3;
  c.batch_size = 3;
  c.load_size = 300;
  c.crop_size = 224;
  c.preprocess = "scale_width";
  c.no_flip = true;
  c.serial_batches = true;
  c.workers = 3;
  c.seed = 9007199254740993ULL;  // 2^53 + 1: not representable as a double
  c.threads = 2;
  c.device = "cuda:1";
  c.max_iters = 55;
  c.save_epoch_freq = 2;
  c.save_latest_freq = 9;
  c.log_freq = 7;
  c.sample_freq = 11;
  c.val_max_images = 13;
  c.validate = false;

  const nlohmann::json j = c.to_json();
  std::set<std::string> keys;
  for (const auto& item : j.items()) keys.insert(item.key());
  const std::set<std::string> expected_keys{
      "task", "dataroot", "direction", "generator", "ndf", "netD", "n_layers_D", "norm_D", "gan_mode",
      "init_type", "init_gain", "lambda_L1", "lambda_A", "lambda_B", "lambda_identity", "pool_size", "lr",
      "beta1", "beta2", "n_epochs", "n_epochs_decay", "batch_size", "load_size", "crop_size", "preprocess",
      "no_flip", "serial_batches", "workers", "seed", "threads", "device", "max_iters", "save_epoch_freq",
      "save_latest_freq", "log_freq", "sample_freq", "val_max_images", "validate"};
  EXPECT_EQ(keys, expected_keys);

  const TrainConfig back = TrainConfig::from_json_string(c.to_json_string(), "mem");
  size_t checked = 0;
  auto field = [&](const char* key, auto member) {
    SCOPED_TRACE(key);
    EXPECT_NE(c.*member, defaults.*member) << "the test must set a non-default value";
    EXPECT_EQ(j.at(key), nlohmann::json(c.*member));
    EXPECT_EQ(back.*member, c.*member);
    ++checked;
  };
  field("task", &TrainConfig::task);
  field("dataroot", &TrainConfig::dataroot);
  field("direction", &TrainConfig::direction);
  field("ndf", &TrainConfig::ndf);
  field("netD", &TrainConfig::netD);
  field("n_layers_D", &TrainConfig::n_layers_D);
  field("norm_D", &TrainConfig::norm_D);
  field("gan_mode", &TrainConfig::gan_mode);
  field("init_type", &TrainConfig::init_type);
  field("init_gain", &TrainConfig::init_gain);
  field("lambda_L1", &TrainConfig::lambda_L1);
  field("lambda_A", &TrainConfig::lambda_A);
  field("lambda_B", &TrainConfig::lambda_B);
  field("lambda_identity", &TrainConfig::lambda_identity);
  field("pool_size", &TrainConfig::pool_size);
  field("lr", &TrainConfig::lr);
  field("beta1", &TrainConfig::beta1);
  field("beta2", &TrainConfig::beta2);
  field("n_epochs", &TrainConfig::n_epochs);
  field("n_epochs_decay", &TrainConfig::n_epochs_decay);
  field("batch_size", &TrainConfig::batch_size);
  field("load_size", &TrainConfig::load_size);
  field("crop_size", &TrainConfig::crop_size);
  field("preprocess", &TrainConfig::preprocess);
  field("no_flip", &TrainConfig::no_flip);
  field("serial_batches", &TrainConfig::serial_batches);
  field("workers", &TrainConfig::workers);
  field("seed", &TrainConfig::seed);
  field("threads", &TrainConfig::threads);
  field("device", &TrainConfig::device);
  field("max_iters", &TrainConfig::max_iters);
  field("save_epoch_freq", &TrainConfig::save_epoch_freq);
  field("save_latest_freq", &TrainConfig::save_latest_freq);
  field("log_freq", &TrainConfig::log_freq);
  field("sample_freq", &TrainConfig::sample_freq);
  field("val_max_images", &TrainConfig::val_max_images);
  field("validate", &TrainConfig::validate);
  EXPECT_EQ(checked + 1, expected_keys.size());  // + generator, below

  EXPECT_FALSE(c.generator == defaults.generator);
  EXPECT_EQ(j.at("generator"), c.generator.to_json());
  EXPECT_EQ(back.generator, c.generator);
  EXPECT_EQ(back.to_json_string(), c.to_json_string());
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

TEST(JsonlLog, RepairsAnUnterminatedLastLineAndNamesTheFileOfABadLine) {
  TempDir dir;
  const auto path = dir / "metrics.jsonl";
  // A crash between a line and its newline: the next line must not be glued to it.
  ganlite::testing::write_text_file(path, "{\"step\":1}\n{\"step\":2}");
  EXPECT_EQ(filter_jsonl(path, [](const nlohmann::json&) { return true; }), 0u);
  append_jsonl(path, nlohmann::json{{"step", 3}});
  EXPECT_EQ(ganlite::testing::read_text_file(path), "{\"step\":1}\n{\"step\":2}\n{\"step\":3}\n");

  ganlite::testing::write_text_file(path, "{\"step\":1}\n{\"step\":\"two\"}\n");
  try {
    filter_jsonl(path, [](const nlohmann::json& j) { return jsonl_counter(j, "step") <= 5; });
    FAIL() << "no error";
  } catch (const ganlite::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(path.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("line 2"), std::string::npos) << msg;
    EXPECT_NE(msg.find("'step'"), std::string::npos) << msg;
  }
  EXPECT_EQ(jsonl_counter(nlohmann::json{{"epoch", 4}}, "step"), -1);
  EXPECT_EQ(jsonl_counter(nlohmann::json::array(), "step"), -1);
  EXPECT_THROW(jsonl_counter(nlohmann::json{{"step", -3}}, "step"), ganlite::Error);
}

namespace {

void touch(const std::filesystem::path& path) {
  std::filesystem::create_directories(path.parent_path());
  ganlite::testing::write_text_file(path, "x");
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ganlite::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(RunFolder, EachStateGetsItsPolicy) {
  namespace fs = std::filesystem;
  TempDir dir;
  const auto run = dir / "run";
  EXPECT_EQ(inspect_run_folder(run), RunFolderState::kEmpty);
  EXPECT_NE(message_of([&] { prepare_run_folder(run, true); }).find("no run to resume"), std::string::npos);
  EXPECT_FALSE(prepare_run_folder(run, false));

  // Killed before its first checkpoint: config, logs, a sample, a best export, temporaries.
  for (const char* name : {"config.json", "metrics.jsonl", "val.jsonl", "student_init.safetensors", "notes.txt",
                           "samples/step_000002.png", "checkpoints/best_net_G.safetensors",
                           ".metrics.jsonl.tmp.123.0", "checkpoints/.latest.ckpt.safetensors.tmp.123.4",
                           "samples/.step_000004.png.tmp.123.2"}) {
    touch(run / name);
  }
  EXPECT_EQ(inspect_run_folder(run), RunFolderState::kUnsaved);
  EXPECT_FALSE(run_folder_has_saved_state(run));
  EXPECT_FALSE(prepare_run_folder(run, true));  // continued from step 0
  for (const char* kept : {"config.json", "student_init.safetensors", "notes.txt"}) {
    EXPECT_TRUE(fs::exists(run / kept)) << kept;
  }
  for (const char* gone : {"metrics.jsonl", "val.jsonl", "samples/step_000002.png", "checkpoints/best_net_G.safetensors"}) {
    EXPECT_FALSE(fs::exists(run / gone)) << gone;
  }
  EXPECT_TRUE(ganlite::testing::temporaries_under(run).empty());

  // With a checkpoint: a new start is refused without touching anything, --resume continues.
  touch(latest_checkpoint_path(run));
  touch(run / "checkpoints" / "latest_net_G.safetensors");
  touch(run / "checkpoints" / ".latest_net_D.safetensors.tmp.77.1");
  EXPECT_EQ(inspect_run_folder(run), RunFolderState::kCheckpointed);
  EXPECT_THROW(prepare_run_folder(run, false), ganlite::UsageError);
  EXPECT_EQ(ganlite::testing::temporaries_under(run).size(), 1u);
  EXPECT_TRUE(prepare_run_folder(run, true));
  EXPECT_TRUE(ganlite::testing::temporaries_under(run).empty());

  // The checkpoint removed after it was saved: neither continued nor silently restarted.
  fs::remove(latest_checkpoint_path(run));
  EXPECT_EQ(inspect_run_folder(run), RunFolderState::kCheckpointLost);
  EXPECT_TRUE(run_folder_has_saved_state(run));
  EXPECT_NE(message_of([&] { prepare_run_folder(run, true); }).find("does not exist"), std::string::npos);
  EXPECT_THROW(prepare_run_folder(run, false), ganlite::UsageError);
}

TEST(RunFolder, RemovesSamplesPastTheCheckpointAndOnlyThose) {
  TempDir dir;
  for (const char* name : {"step_000003.png", "step_000005.png", "step_000010.png", "step_x.png", "grid.png"}) {
    touch(dir / "samples" / name);
  }
  EXPECT_EQ(remove_samples_after(dir.path(), 5), 1u);
  EXPECT_TRUE(std::filesystem::exists(dir / "samples" / "step_000005.png"));
  EXPECT_FALSE(std::filesystem::exists(dir / "samples" / "step_000010.png"));
  EXPECT_TRUE(std::filesystem::exists(dir / "samples" / "step_x.png"));
  EXPECT_TRUE(std::filesystem::exists(dir / "samples" / "grid.png"));
}
