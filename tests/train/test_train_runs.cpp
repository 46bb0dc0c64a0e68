// End-to-end training runs on tiny synthetic data: exact resume after SIGKILL, SIGTERM
// checkpoints, config reproduction, NaN guard, corrupt checkpoints, translate on odd sizes.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "ganlite/data/image_io.h"
#include "ganlite/io/checkpoint.h"
#include "ganlite/io/safetensors.h"
#include "ganlite/nn/generator.h"
#include "ganlite/train/trainer.h"
#include "ganlite/util/error.h"
#include "event_scalars.h"
#include "test_support.h"
#include "tiny_dataset.h"

namespace fs = std::filesystem;
using ganlite::testing::expect_same_metrics_log;
using ganlite::testing::logged_steps;
using ganlite::testing::run_cli_killed_while_writing;
using ganlite::testing::temporaries_under;
using ganlite::testing::read_jsonl;
using ganlite::testing::run_and_sigkill_after_first_checkpoint;
using ganlite::testing::run_cli;
using ganlite::testing::spawn_cli;
using ganlite::testing::wait_for_file;
using ganlite::testing::TempDir;

namespace {

const fs::path& dataset() { return ganlite::testing::tiny_edges2shapes(); }

// `epochs` at the initial lr, then `decay_epochs` (default: as many); 6 batches an epoch.
std::string tiny_args(const fs::path& out, int epochs, int decay_epochs = -1,
                      const std::string& frequencies = "--save-latest-freq 3 --sample-freq 0 --log-freq 1") {
  return "train --task pix2pix --data '" + dataset().string() +
         "' --arch resnet --ngf 4 --n-blocks 1 --ndf 4 --load-size 36 --crop-size 32 --threads 1 --workers 1"
         " --n-epochs " + std::to_string(epochs) + " --n-epochs-decay " +
         std::to_string(decay_epochs < 0 ? epochs : decay_epochs) +
         " " + frequencies + " --seed 5 -q --out '" + out.string() + "'";
}

ganlite::io::SafetensorsContents load_ckpt(const fs::path& run) {
  return ganlite::io::load_safetensors(ganlite::train::latest_checkpoint_path(run));
}

// Every network and optimizer tensor of two checkpoints is bit-identical.
void expect_same_state(const fs::path& run_a, const fs::path& run_b) {
  const auto a = load_ckpt(run_a);
  const auto b = load_ckpt(run_b);
  std::map<std::string, torch::Tensor> tb(b.tensors.begin(), b.tensors.end());
  int compared_g = 0, compared_d = 0;
  for (const auto& [key, t] : a.tensors) {
    if (key.rfind("rng.", 0) == 0) continue;
    ASSERT_TRUE(tb.count(key)) << key;
    EXPECT_TRUE(torch::equal(t, tb[key])) << key;
    compared_g += key.rfind("G.", 0) == 0;
    compared_d += key.rfind("D.", 0) == 0;
  }
  EXPECT_GT(compared_g, 5);
  EXPECT_GT(compared_d, 3);
  EXPECT_EQ(a.tensors.size(), b.tensors.size());
  EXPECT_EQ(a.metadata.at("global_step"), b.metadata.at("global_step"));
}

int64_t checkpoint_step(const fs::path& run) { return std::stoll(load_ckpt(run).metadata.at("global_step")); }

// The regular files under `dir`, by path relative to it, with their bytes.
std::map<std::string, std::string> files_under(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_regular_file()) {
      files[fs::relative(entry.path(), dir).string()] = ganlite::testing::read_text_file(entry.path());
    }
  }
  return files;
}

}  // namespace

TEST(TrainRun, TheLastStepIsLoggedWhateverTheLogFrequency) {
  TempDir dir;
  // 6 iterations (one epoch, no decay) with a line every 10: the last one is still logged.
  const auto ended = run_cli(tiny_args(dir / "ended", 1, 0, "--log-freq 10"));
  ASSERT_EQ(ended.exit_code, 0) << ended.output;
  EXPECT_EQ(logged_steps(dir / "ended"), std::vector<int64_t>{6});
  EXPECT_EQ(checkpoint_step(dir / "ended"), 6);
  // Stopped by --max-iters between two log steps.
  const auto stopped = run_cli(tiny_args(dir / "stopped", 1, -1, "--log-freq 3") + " --max-iters 4");
  ASSERT_EQ(stopped.exit_code, 0) << stopped.output;
  EXPECT_EQ(logged_steps(dir / "stopped"), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(checkpoint_step(dir / "stopped"), 4);
}

// SIGKILL in the middle of writing config.json, the first checkpoint, a sample, a later
// checkpoint and an exported network (GANLITE_TEST_ABORT_IN_WRITE), each followed by a new start
// or --resume: the end is the uninterrupted run's, file for file.
TEST(TrainRun, KilledAtSeveralMomentsEndsBitIdenticalToAnUninterruptedRun) {
  TempDir dir;
  // 11 iterations; checkpoints at 4, 6 (epoch end), 8, 11; log lines at 3, 6, 9, 11; samples at 5, 10.
  const auto args = [&](const fs::path& out) {
    return tiny_args(out, 1, -1, "--save-latest-freq 4 --log-freq 3 --sample-freq 5") + " --max-iters 11";
  };
  const fs::path run = dir / "killed";
  const std::string resume = "train --resume '" + run.string() + "' --threads 1 -q";
  const auto full = run_cli(args(dir / "full"));
  ASSERT_EQ(full.exit_code, 0) << full.output;
  ASSERT_EQ(logged_steps(dir / "full"), (std::vector<int64_t>{3, 6, 9, 11}));

  // Before anything is saved: started again with the same command.
  ASSERT_NO_FATAL_FAILURE(run_cli_killed_while_writing("config.json", args(run)));
  EXPECT_FALSE(fs::exists(run / "config.json"));
  EXPECT_EQ(temporaries_under(run).size(), 1u);
  ASSERT_NO_FATAL_FAILURE(run_cli_killed_while_writing("latest.ckpt.safetensors", args(run)));
  EXPECT_FALSE(fs::exists(ganlite::train::latest_checkpoint_path(run)));
  EXPECT_EQ(logged_steps(run), std::vector<int64_t>{3});
  // No checkpoint yet: the run starts again from step 0 and replaces its log.
  ASSERT_NO_FATAL_FAILURE(run_cli_killed_while_writing("step_000005.png", args(run)));
  EXPECT_EQ(checkpoint_step(run), 4);
  EXPECT_EQ(logged_steps(run), std::vector<int64_t>{3});
  EXPECT_EQ(temporaries_under(run).size(), 1u);
  // While writing the checkpoint of step 8 (the session's second), then an export after it.
  ASSERT_NO_FATAL_FAILURE(run_cli_killed_while_writing("latest.ckpt.safetensors@2", resume));
  EXPECT_EQ(checkpoint_step(run), 6);
  ASSERT_NO_FATAL_FAILURE(run_cli_killed_while_writing("latest_net_D.safetensors", resume));
  EXPECT_EQ(checkpoint_step(run), 8);
  EXPECT_EQ(temporaries_under(run).size(), 1u);

  const auto resumed = run_cli(resume);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  expect_same_state(dir / "full", run);
  expect_same_metrics_log(dir / "full", run);
  EXPECT_EQ(logged_steps(run), (std::vector<int64_t>{3, 6, 9, 11}));
  EXPECT_TRUE(temporaries_under(run).empty());
  // TensorBoard's events too: every step once, as the uninterrupted run's (losses, lr, validation).
  const auto events_full = ganlite::testing::event_scalars(dir / "full");
  EXPECT_EQ(events_full.at("loss/G_GAN").size(), 4u);
  EXPECT_EQ(events_full, ganlite::testing::event_scalars(run));
  // Samples and exported networks byte for byte, and no other file.
  for (const char* sub : {"samples", "checkpoints"}) {
    auto a = files_under(dir / "full" / sub);
    auto b = files_under(run / sub);
    a.erase("latest.ckpt.safetensors");  // its wall time differs; compared tensor by tensor above
    b.erase("latest.ckpt.safetensors");
    std::vector<std::string> names_a, names_b;
    for (const auto& [name, bytes] : a) names_a.push_back(name);
    for (const auto& [name, bytes] : b) names_b.push_back(name);
    ASSERT_EQ(names_a, names_b) << sub;
    for (const auto& [name, bytes] : a) EXPECT_TRUE(bytes == b.at(name)) << sub << "/" << name;
  }
  EXPECT_EQ(files_under(run / "samples").size(), 2u);
  const auto val_a = read_jsonl(dir / "full" / "val.jsonl");
  const auto val_b = read_jsonl(run / "val.jsonl");
  ASSERT_EQ(val_a.size(), 1u);
  ASSERT_EQ(val_b.size(), 1u);
  EXPECT_EQ(val_a[0].at("psnr"), val_b[0].at("psnr"));
}

TEST(TrainRun, ResumeAfterSigkillIsBitIdenticalToAnUninterruptedRun) {
  TempDir dir;
  const int epochs = 4;  // 6 batches per epoch, 48 iterations
  const auto full = run_cli(tiny_args(dir / "full", epochs));
  ASSERT_EQ(full.exit_code, 0) << full.output;

  ASSERT_NO_FATAL_FAILURE(run_and_sigkill_after_first_checkpoint(tiny_args(dir / "killed", epochs), dir / "killed"));
  const auto at_kill = std::stoll(load_ckpt(dir / "killed").metadata.at("global_step"));
  EXPECT_LT(at_kill, 48);

  const auto resumed = run_cli("train --resume '" + (dir / "killed").string() + "' --threads 1 -q");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  expect_same_state(dir / "full", dir / "killed");

  // The logs read as if the run had never stopped (wall times aside).
  ASSERT_EQ(read_jsonl(dir / "full" / "metrics.jsonl").size(), 48u);
  expect_same_metrics_log(dir / "full", dir / "killed");
  EXPECT_EQ(read_jsonl(dir / "full" / "val.jsonl").size(), read_jsonl(dir / "killed" / "val.jsonl").size());
  EXPECT_TRUE(fs::exists(dir / "killed" / "checkpoints" / "latest_net_G.safetensors"));
  EXPECT_TRUE(fs::exists(dir / "killed" / "checkpoints" / "latest_net_D.safetensors"));
  EXPECT_TRUE(fs::exists(dir / "killed" / "checkpoints" / "best_net_G.safetensors"));
}

TEST(TrainRun, SigtermSavesACheckpointAndExitsNonZero) {
  TempDir dir;
  int status = 0;
  const pid_t pid = spawn_cli(tiny_args(dir / "run", 50), dir / "run.log");
  ASSERT_TRUE(wait_for_file(pid, ganlite::train::latest_checkpoint_path(dir / "run"), &status));
  ::kill(pid, SIGTERM);
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1);
  const auto log = ganlite::testing::read_text_file(dir / "run.log");
  EXPECT_NE(log.find("SIGTERM"), std::string::npos) << log;
  EXPECT_NE(log.find("latest.ckpt.safetensors"), std::string::npos) << log;
  // The checkpoint is at the step where the signal was handled, and the run resumes from it.
  const auto ckpt = load_ckpt(dir / "run");
  const auto step = std::stoll(ckpt.metadata.at("global_step"));
  const auto last_logged = read_jsonl(dir / "run" / "metrics.jsonl").back()["step"].get<int64_t>();
  EXPECT_EQ(step, last_logged);
  const auto resumed = run_cli("train --resume '" + (dir / "run").string() + "' --max-iters " +
                               std::to_string(step + 2) + " --json");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("\"global_step\": " + std::to_string(step + 2)), std::string::npos);
}

TEST(TrainRun, ConfigFileReproducesTheRun) {
  TempDir dir;
  const auto first = run_cli(tiny_args(dir / "a", 1) + " --max-iters 8");
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const auto second = run_cli("train --config '" + (dir / "a" / "config.json").string() + "' --out '" +
                              (dir / "b").string() + "' -q");
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_EQ(ganlite::testing::read_text_file(dir / "a" / "config.json"),
            ganlite::testing::read_text_file(dir / "b" / "config.json"));
  expect_same_state(dir / "a", dir / "b");
  // A flag overrides the file, and the effective config says so.
  const auto third = run_cli("train --config '" + (dir / "a" / "config.json").string() + "' --seed 6 --out '" +
                             (dir / "c").string() + "' -q");
  ASSERT_EQ(third.exit_code, 0) << third.output;
  const auto cfg = ganlite::train::TrainConfig::load((dir / "c" / "config.json").string());
  EXPECT_EQ(cfg.seed, 6u);
  EXPECT_EQ(cfg.max_iters, 8);
  EXPECT_FALSE(torch::equal(load_ckpt(dir / "a").tensors[0].second, load_ckpt(dir / "c").tensors[0].second));
}

TEST(TrainRun, NonFiniteLossStopsAndKeepsTheLastGoodCheckpoint) {
  TempDir dir;
  ganlite::train::TrainConfig config;
  config.dataroot = dataset().string();
  config.generator.ngf = 4;
  config.generator.n_blocks = 1;
  config.ndf = 4;
  config.load_size = 32;
  config.crop_size = 32;
  config.threads = 1;
  config.workers = 1;
  config.save_latest_freq = 2;
  config.sample_freq = 0;
  ganlite::train::TrainerOptions options;
  options.run_dir = dir / "run";
  options.after_step_hook = [](int64_t step, ganlite::train::Losses& losses) {
    if (step == 5) losses[1].second = std::nan("");
  };
  try {
    ganlite::train::train(config, options);
    FAIL() << "no error";
  } catch (const ganlite::Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("G_L1"), std::string::npos) << msg;
    EXPECT_NE(msg.find("step 5"), std::string::npos) << msg;
    EXPECT_NE(msg.find("latest.ckpt.safetensors"), std::string::npos) << msg;
  }
  EXPECT_EQ(load_ckpt(dir / "run").metadata.at("global_step"), "4");
}

TEST(TrainRun, CorruptOrMissingCheckpointNamesTheFile) {
  TempDir dir;
  ASSERT_EQ(run_cli(tiny_args(dir / "run", 1) + " --max-iters 3").exit_code, 0);
  const auto ckpt = ganlite::train::latest_checkpoint_path(dir / "run");
  ganlite::testing::write_text_file(ckpt, "\x10\x00\x00\x00\x00\x00\x00\x00{\"broken");
  const auto r = run_cli("train --resume '" + (dir / "run").string() + "'");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(ckpt.string()), std::string::npos) << r.output;
  fs::remove(ckpt);
  const auto missing = run_cli("train --resume '" + (dir / "run").string() + "'");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("does not exist"), std::string::npos) << missing.output;
  // A fresh run into a folder that holds one is refused (exit 2).
  ASSERT_EQ(run_cli(tiny_args(dir / "other", 1) + " --max-iters 1").exit_code, 0);
  const auto again = run_cli(tiny_args(dir / "other", 1) + " --max-iters 1");
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.output.find("--resume"), std::string::npos) << again.output;
}

TEST(TrainRun, CycleGanRunsAndResumesWithItsPools) {
  TempDir dir;
  const auto data = dir / "s2s";
  ASSERT_EQ(run_cli("make-dataset --kind shapes2stripes --count 4 --test-count 2 --size 32 --seed 2 -q --out '" +
                    data.string() + "'").exit_code, 0);
  const std::string args = "train --task cyclegan --data '" + data.string() +
                           "' --ngf 4 --n-blocks 1 --ndf 4 --pool-size 3 --load-size 32 --crop-size 32 --threads 1"
                           " --workers 1 --n-epochs 1 --n-epochs-decay 1 --save-latest-freq 3 -q --json";
  const auto full = run_cli(args + " --out '" + (dir / "full").string() + "'");
  ASSERT_EQ(full.exit_code, 0) << full.output;
  EXPECT_NE(full.output.find("best_psnr"), std::string::npos) << full.output;  // validated on testA_truth
  ASSERT_EQ(run_cli(args + " --max-iters 5 --out '" + (dir / "part").string() + "'").exit_code, 0);
  const auto resumed = run_cli("train --resume '" + (dir / "part").string() + "' --max-iters 0 -q");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  const auto a = load_ckpt(dir / "full");
  const auto b = load_ckpt(dir / "part");
  std::map<std::string, torch::Tensor> tb(b.tensors.begin(), b.tensors.end());
  for (const auto& [key, t] : a.tensors) {
    if (key.rfind("rng.", 0) == 0) continue;
    ASSERT_TRUE(tb.count(key)) << key;
    EXPECT_TRUE(torch::equal(t, tb[key])) << key;
  }
  EXPECT_EQ(a.tensors.size(), b.tensors.size());
  // The pools (images compared above, their draws' RNG here) continue as if never stopped.
  for (const std::string pool : {"pool_fake_A", "pool_fake_B"}) {
    EXPECT_TRUE(tb.count(pool + ".0")) << pool;
    EXPECT_EQ(a.metadata.at(pool + ".count"), b.metadata.at(pool + ".count")) << pool;
    EXPECT_EQ(a.metadata.at(pool + ".rng"), b.metadata.at(pool + ".rng")) << pool;
  }
  EXPECT_TRUE(fs::exists(dir / "full" / "checkpoints" / "latest_net_G_B.safetensors"));
}

TEST(Translate, OddSizesKeepSizesAndNames) {
  TempDir dir;
  for (const std::string arch : {"resnet", "unet"}) {
    ganlite::nn::ArchConfig config;
    config.arch = arch;
    config.ngf = 4;
    config.n_blocks = 1;
    config.num_downs = 5;
    auto generator = ganlite::nn::make_generator(config);
    const auto model = dir / (arch + ".safetensors");
    ganlite::io::save_generator(model, *generator);
    const auto in = dir / ("in_" + arch);
    fs::create_directories(in);
    ganlite::data::write_image_rgb(in / "wide.png", cv::Mat(21, 50, CV_8UC3, cv::Scalar(10, 200, 30)));
    ganlite::data::write_image_rgb(in / "odd.jpg", cv::Mat(29, 37, CV_8UC3, cv::Scalar(90, 20, 230)));
    ganlite::data::write_image_rgb(in / "odd2.png", cv::Mat(29, 37, CV_8UC3, cv::Scalar(5, 5, 5)));
    const auto out = dir / ("out_" + arch);
    const auto r = run_cli("translate --model '" + model.string() + "' --input '" + in.string() + "' --out '" +
                           out.string() + "' --batch-size 2 --threads 1 --json");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(ganlite::data::read_image_rgb(out / "wide.png").size(), cv::Size(50, 21));
    EXPECT_EQ(ganlite::data::read_image_rgb(out / "odd.png").size(), cv::Size(37, 29));
    EXPECT_EQ(ganlite::data::read_image_rgb(out / "odd2.png").size(), cv::Size(37, 29));
  }
  const auto missing = run_cli("translate --model '" + (dir / "nope.safetensors").string() + "' --input '" +
                               (dir / "in_resnet" / "wide.png").string() + "' --out '" + (dir / "o").string() + "'");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.output.find("nope.safetensors"), std::string::npos) << missing.output;
}
