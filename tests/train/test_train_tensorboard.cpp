// TensorBoard event files of a training run (util/tensorboard.h): a tiny `train` run's events hold
// metrics.jsonl's losses and lr step for step, val.jsonl's figures per epoch and the sample grids;
// a resumed run shows each step once; --no-tensorboard writes none; the setting's config.json round
// trip. (test_train_runs.cpp also compares a run killed at several moments with an uninterrupted one.)
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <set>

#include "ganlite/train/train_config.h"
#include "ganlite/util/tensorboard.h"
#include "event_scalars.h"
#include "test_support.h"
#include "tiny_dataset.h"

namespace fs = std::filesystem;
using ganlite::testing::event_scalars;
using ganlite::testing::read_jsonl;
using ganlite::testing::run_cli;
using ganlite::testing::TempDir;

namespace {

// Two epochs of 6 steps (the second with decay), a log line every step, a sample grid every 6.
std::string tensorboard_run_args(const fs::path& out, const std::string& extra = "") {
  return "train --task pix2pix --data '" + ganlite::testing::tiny_edges2shapes().string() +
         "' --arch resnet --ngf 4 --n-blocks 1 --ndf 4 --load-size 36 --crop-size 32 --threads 1 --workers 1"
         " --n-epochs 1 --n-epochs-decay 1 --log-freq 1 --sample-freq 6 --seed 5 -q " +
         extra + " --out '" + out.string() + "'";
}

using Series = std::vector<std::pair<int64_t, float>>;

}  // namespace

TEST(TrainTensorboard, EventsHoldTheLoggedLossesValidationFiguresAndSamples) {
  TempDir dir;
  const fs::path run = dir / "run";
  const auto r = run_cli(tensorboard_run_args(run));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto files = ganlite::event_files_in(run);
  ASSERT_EQ(files.size(), 1u);

  // Every numeric field of every metrics.jsonl line, at its step, float32 exact.
  std::map<std::string, Series> expected;
  const auto metrics = read_jsonl(run / "metrics.jsonl");
  ASSERT_EQ(metrics.size(), 12u);
  for (const auto& line : metrics) {
    const int64_t step = line.at("step").get<int64_t>();
    for (const auto& [key, value] : line.items()) {
      if (key == "step" || key == "epoch" || key == "epoch_iter" || key == "wall_seconds") continue;
      expected[key == "lr" ? "lr" : "loss/" + key].emplace_back(step, static_cast<float>(value.get<double>()));
    }
  }
  EXPECT_TRUE(expected.count("loss/G_GAN") && expected.count("loss/D_real"));
  // And one validation event per epoch, with every figure of val.jsonl.
  const auto val = read_jsonl(run / "val.jsonl");
  ASSERT_EQ(val.size(), 2u);
  for (const auto& line : val) {
    for (const char* key : {"psnr", "ssim"}) {
      expected[std::string("val/") + key].emplace_back(line.at("step").get<int64_t>(),
                                                        static_cast<float>(line.at(key).get<double>()));
    }
  }
  EXPECT_EQ(expected.at("val/psnr").front().first, 6);
  EXPECT_EQ(expected.at("val/psnr").back().first, 12);
  EXPECT_EQ(event_scalars(run), expected);

  // The sample grids, as the PNG files beside them.
  std::vector<int64_t> image_steps;
  for (const auto& event : ganlite::read_event_file(files[0]).events) {
    for (const auto& image : event.images) {
      image_steps.push_back(event.step);
      EXPECT_EQ(image.tag, "samples");
      char name[32];
      std::snprintf(name, sizeof(name), "step_%06lld.png", static_cast<long long>(event.step));
      const cv::Mat file = cv::imread((run / "samples" / name).string(), cv::IMREAD_COLOR);
      const cv::Mat logged = cv::imdecode(std::vector<uchar>(image.png.begin(), image.png.end()), cv::IMREAD_COLOR);
      ASSERT_FALSE(file.empty()) << name;
      ASSERT_EQ(logged.size(), file.size()) << name;
      EXPECT_EQ(image.height, file.rows);
      EXPECT_EQ(image.width, file.cols);
      EXPECT_EQ(image.colorspace, 3);
      EXPECT_EQ(cv::norm(logged, file, cv::NORM_INF), 0.0) << name;
    }
  }
  EXPECT_EQ(image_steps, (std::vector<int64_t>{6, 12}));
}

// Killed while writing its second checkpoint (step 6; the first is step 3) after logging steps 4-6
// and the sample of step 6: the resumed run drops those events from the first file and writes
// them again in its own, so TensorBoard sees each step once, as in the uninterrupted run.
TEST(TrainTensorboard, ResumedRunShowsEachStepOnceAsTheUninterruptedRun) {
  TempDir dir;
  const auto full = run_cli(tensorboard_run_args(dir / "full", "--save-latest-freq 3"));
  ASSERT_EQ(full.exit_code, 0) << full.output;
  const fs::path run = dir / "killed";
  ASSERT_NO_FATAL_FAILURE(ganlite::testing::run_cli_killed_while_writing(
      "latest.ckpt.safetensors@2", tensorboard_run_args(run, "--save-latest-freq 3")));
  ASSERT_EQ(event_scalars(run).at("loss/G_GAN").back().first, 6);  // logged past the checkpoint
  const auto resumed = run_cli("train --resume '" + run.string() + "' --threads 1 -q");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;

  const auto files = ganlite::event_files_in(run);
  ASSERT_EQ(files.size(), 2u);
  for (const auto& event : ganlite::read_event_file(files[0]).events) EXPECT_LE(event.step, 3) << files[0];
  EXPECT_EQ(event_scalars(run), event_scalars(dir / "full"));
  std::vector<int64_t> image_steps;
  for (const auto& file : files) {
    for (const auto& event : ganlite::read_event_file(file).events) {
      if (!event.images.empty()) image_steps.push_back(event.step);
    }
  }
  EXPECT_EQ(image_steps, (std::vector<int64_t>{6, 12}));
}

TEST(TrainTensorboard, NoTensorboardWritesNoEventsAndResumeMayTurnThemOn) {
  TempDir dir;
  const fs::path run = dir / "run";
  const auto off = run_cli(tensorboard_run_args(run, "--no-tensorboard --no-validate --max-iters 2"));
  ASSERT_EQ(off.exit_code, 0) << off.output;
  EXPECT_TRUE(ganlite::event_files_in(run).empty());
  EXPECT_EQ(read_jsonl(run / "metrics.jsonl").size(), 2u);
  EXPECT_EQ(nlohmann::json::parse(ganlite::testing::read_text_file(run / "config.json")).at("tensorboard"), false);
  // A log setting, so a resumed run may change it (as --log-freq).
  const auto on = run_cli("train --resume '" + run.string() + "' --tensorboard --max-iters 3 --threads 1 -q");
  ASSERT_EQ(on.exit_code, 0) << on.output;
  const auto scalars = event_scalars(run);
  ASSERT_TRUE(scalars.count("loss/G_GAN"));
  EXPECT_EQ(scalars.at("loss/G_GAN").size(), 1u);
  EXPECT_EQ(scalars.at("loss/G_GAN").front().first, 3);
}

TEST(TrainTensorboard, ConfigWritesTheSettingOnlyWhenOffAndOlderConfigsReadAsOn) {
  ganlite::train::TrainConfig c;
  c.dataroot = "d";
  EXPECT_FALSE(c.to_json().contains("tensorboard"));  // configs of runs before the setting are unchanged
  EXPECT_TRUE(ganlite::train::TrainConfig::from_json_string(c.to_json_string(), "mem").tensorboard);
  c.tensorboard = false;
  EXPECT_EQ(c.to_json().at("tensorboard"), false);
  EXPECT_FALSE(ganlite::train::TrainConfig::from_json_string(c.to_json_string(), "mem").tensorboard);
}
