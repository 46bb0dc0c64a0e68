// `ganlite distill` end to end on a tiny edges2shapes set: named loss terms in the logs, the
// distill section in config.json, bit-identical resume after SIGKILL, refusals.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "ganlite/compress/distill_config.h"
#include "ganlite/io/checkpoint.h"
#include "ganlite/io/safetensors.h"
#include "ganlite/nn/generator.h"
#include "ganlite/train/trainer.h"
#include "test_support.h"

namespace fs = std::filesystem;
using ganlite::testing::expect_same_metrics_log;
using ganlite::testing::logged_steps;
using ganlite::testing::run_cli_killed_while_writing;
using ganlite::testing::temporaries_under;
using ganlite::testing::read_jsonl;
using ganlite::testing::run_and_sigkill_after_first_checkpoint;
using ganlite::testing::run_cli;
using ganlite::testing::TempDir;

namespace {

struct Fixture {
  TempDir dir;
  fs::path data, teacher, student;
};

// Data (8 train pairs, 32x32), an inception teacher (ngf 8, BatchNorm) and a student (ngf 4).
const Fixture& fixture() {
  static Fixture f;
  static bool made = false;
  if (!made) {
    made = true;
    f.data = f.dir / "e2s";
    const auto r = run_cli("make-dataset --kind edges2shapes --count 8 --test-count 2 --size 32 --seed 1 -q --out '" +
                           f.data.string() + "'");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    ganlite::nn::ArchConfig c;
    c.arch = "inception";
    c.n_blocks = 3;
    c.norm = "batch";
    torch::manual_seed(2);
    c.ngf = 8;
    f.teacher = f.dir / "teacher.safetensors";
    ganlite::io::save_generator(f.teacher, *ganlite::nn::make_generator(c));
    c.ngf = 4;
    f.student = f.dir / "student.safetensors";
    ganlite::io::save_generator(f.student, *ganlite::nn::make_generator(c));
  }
  return f;
}

// 4 batches an epoch, 16 iterations.
std::string distill_args(const fs::path& out, const std::string& method = "ka+mse", int batch = 2,
                         const std::string& frequencies = "--save-latest-freq 2 --sample-freq 0 --log-freq 1") {
  const auto& f = fixture();
  return "distill --method " + method + " --teacher '" + f.teacher.string() + "' --student '" + f.student.string() +
         "' --task pix2pix --data '" + f.data.string() + "' --batch-size " + std::to_string(batch) +
         " --ndf 4 --load-size 32 --crop-size 32 --n-epochs 2 --n-epochs-decay 2 " + frequencies +
         " --threads 1 --workers 1 --seed 3 -q --out '" + out.string() + "'" +
         (method == "ka+mse" ? " --lambda-mse 0.5" : "");
}

// Every tensor of `full`'s latest checkpoint but the RNG states equals `resumed`'s; returns
// `resumed`'s tensors and how many were compared per prefix ("G", "D", "opt_G", ...); both
// hold the same number of tensors.
void expect_same_checkpoints(const fs::path& full, const fs::path& resumed, std::map<std::string, torch::Tensor>* tb,
                             std::map<std::string, int>* compared) {
  const auto a = ganlite::io::load_safetensors(ganlite::train::latest_checkpoint_path(full));
  const auto b = ganlite::io::load_safetensors(ganlite::train::latest_checkpoint_path(resumed));
  tb->insert(b.tensors.begin(), b.tensors.end());
  for (const auto& [key, t] : a.tensors) {
    if (key.rfind("rng.", 0) == 0) continue;
    ASSERT_TRUE(tb->count(key)) << key;
    EXPECT_TRUE(torch::equal(t, tb->at(key))) << key;
    ++(*compared)[key.substr(0, key.find('.'))];
  }
  EXPECT_EQ(a.tensors.size(), b.tensors.size());
}

}  // namespace

TEST(DistillCli, RunLogsNamedTermsAndResumesBitIdenticallyAfterSigkill) {
  TempDir dir;
  const auto full = run_cli(distill_args(dir / "full") + " --json");
  ASSERT_EQ(full.exit_code, 0) << full.output;

  const auto config = nlohmann::json::parse(ganlite::testing::read_text_file(dir / "full" / "config.json"));
  EXPECT_EQ(config.at("distill").at("methods"), nlohmann::json::array({"ka", "mse"}));
  EXPECT_EQ(config.at("distill").at("weights").at("mse"), 0.5);
  EXPECT_EQ(config.at("distill").at("lambda_recon"), 100.0);
  EXPECT_EQ(config.at("generator").at("ngf"), 4);  // the student's architecture
  // Resume reads config.json into the typed config, which writes it back byte for byte.
  const fs::path stored = dir / "full" / "config.json";
  EXPECT_EQ(ganlite::compress::DistillRunConfig::load(stored.string()).to_json_string(),
            ganlite::testing::read_text_file(stored));
  const auto lines = read_jsonl(dir / "full" / "metrics.jsonl");
  ASSERT_EQ(lines.size(), 16u);  // 4 batches x 4 epochs
  for (const char* key : {"G_gan", "G_recon", "G_ka", "G_mse", "D_real", "D_fake"}) EXPECT_TRUE(lines[0].contains(key)) << key;
  EXPECT_TRUE(fs::exists(dir / "full" / "checkpoints" / "latest_net_G.safetensors"));
  EXPECT_TRUE(fs::exists(dir / "full" / "checkpoints" / "latest_net_D.safetensors"));
  EXPECT_EQ(read_jsonl(dir / "full" / "val.jsonl").size(), 4u);

  ASSERT_NO_FATAL_FAILURE(run_and_sigkill_after_first_checkpoint(distill_args(dir / "killed"), dir / "killed"));

  // Only session flags may change on resume.
  EXPECT_EQ(run_cli("distill --resume '" + (dir / "killed").string() + "' --method ka -q").exit_code, 2);
  // `ganlite train` refuses a distillation run's config, naming the command that runs it, and
  // `ganlite distill` a plain training run's.
  const std::string killed_config = (dir / "killed" / "config.json").string();
  for (const std::string& args : {"train --resume '" + (dir / "killed").string() + "' --threads 1 -q",
                                  "train --config '" + killed_config + "' --out '" + (dir / "t").string() + "' -q"}) {
    const auto r = run_cli(args);
    EXPECT_EQ(r.exit_code, 2) << args;
    EXPECT_NE(r.output.find(killed_config + ": this config describes a distillation run"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("`ganlite distill`"), std::string::npos) << r.output;
  }
  EXPECT_FALSE(fs::exists(dir / "t"));
  ganlite::train::TrainConfig plain;
  plain.dataroot = fixture().data.string();
  fs::create_directories(dir / "plain");
  ganlite::testing::write_text_file(dir / "plain" / "config.json", plain.to_json_string());
  const auto not_distill = run_cli("distill --resume '" + (dir / "plain").string() + "' -q");
  EXPECT_EQ(not_distill.exit_code, 2);
  EXPECT_NE(not_distill.output.find("config.json' is not a distillation run"), std::string::npos) << not_distill.output;
  const auto resumed = run_cli("distill --resume '" + (dir / "killed").string() + "' --threads 1 -q");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;

  std::map<std::string, torch::Tensor> tb;
  std::map<std::string, int> compared;
  ASSERT_NO_FATAL_FAILURE(expect_same_checkpoints(dir / "full", dir / "killed", &tb, &compared));
  EXPECT_GT(compared["G"], 5);
  EXPECT_GT(compared["D"], 3);
  EXPECT_EQ(compared["A_mse"], 8);  // 4 adaptors, weight and bias
  EXPECT_GT(compared["opt_G"], 5);
  expect_same_metrics_log(dir / "full", dir / "killed");
  // The frozen teacher in the checkpoint is the teacher file, bit for bit.
  const auto teacher = ganlite::io::load_safetensors(fixture().teacher);
  for (const auto& [key, t] : teacher.tensors) EXPECT_TRUE(torch::equal(t, tb.at("T." + key))) << key;
}

// SIGKILL while writing the first checkpoint (so before any), then while writing a later one,
// each followed by --resume: the end is the uninterrupted run's, each step logged once (the last
// one too, though 16 is no multiple of --log-freq 3), no temporary left.
TEST(DistillCli, KilledWhileWritingCheckpointsResumesBitIdentically) {
  TempDir dir;
  // Checkpoints at 4 (epoch end), 5, 8 (epoch end), 10, 12, 15, 16; log lines at 3, 6, 9, 12, 15, 16.
  const std::string frequencies = "--save-latest-freq 5 --sample-freq 0 --log-freq 3";
  const fs::path run = dir / "killed";
  const std::string resume = "distill --resume '" + run.string() + "' --threads 1 -q";
  const auto full = run_cli(distill_args(dir / "full", "ka", 2, frequencies));
  ASSERT_EQ(full.exit_code, 0) << full.output;
  const std::vector<int64_t> expected_steps{3, 6, 9, 12, 15, 16};
  ASSERT_EQ(logged_steps(dir / "full"), expected_steps);

  ASSERT_NO_FATAL_FAILURE(run_cli_killed_while_writing("latest.ckpt.safetensors", distill_args(run, "ka", 2, frequencies)));
  EXPECT_FALSE(fs::exists(ganlite::train::latest_checkpoint_path(run)));
  EXPECT_EQ(logged_steps(run), std::vector<int64_t>{3});
  // No checkpoint yet: --resume starts again from step 0, replacing the log; killed at step 8.
  ASSERT_NO_FATAL_FAILURE(run_cli_killed_while_writing("latest.ckpt.safetensors@3", resume));
  EXPECT_EQ(ganlite::io::read_safetensors_header(ganlite::train::latest_checkpoint_path(run)).metadata.at("global_step"), "5");
  EXPECT_EQ(logged_steps(run), (std::vector<int64_t>{3, 6}));
  EXPECT_EQ(temporaries_under(run).size(), 1u);

  const auto resumed = run_cli(resume);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  std::map<std::string, torch::Tensor> tb;
  std::map<std::string, int> compared;
  ASSERT_NO_FATAL_FAILURE(expect_same_checkpoints(dir / "full", run, &tb, &compared));
  EXPECT_GT(compared["G"], 5);
  EXPECT_GT(compared["opt_D"], 3);
  expect_same_metrics_log(dir / "full", run);
  EXPECT_EQ(logged_steps(run), expected_steps);
  EXPECT_TRUE(temporaries_under(run).empty());
}

TEST(DistillCli, DcdWithNarrowStudentDLogsItsTermsAndResumesBitIdenticallyAfterSigkill) {
  TempDir dir;
  const std::string extra = " --student-ndf 2 --lambda-dcd 0.5";
  const auto full = run_cli(distill_args(dir / "full", "dcd+wkd") + extra);
  ASSERT_EQ(full.exit_code, 0) << full.output;
  // Without --vgg-weights the perceptual terms are off, said once.
  size_t said = 0;
  for (size_t at = full.output.find("no --vgg-weights"); at != std::string::npos; at = full.output.find("no --vgg-weights", at + 1)) ++said;
  EXPECT_EQ(said, 1u) << full.output;
  const auto config = nlohmann::json::parse(ganlite::testing::read_text_file(dir / "full" / "config.json"));
  EXPECT_EQ(config.at("ndf"), 2);                            // the student's D
  EXPECT_EQ(config.at("distill").at("teacher_ndf"), 4);      // the run's --ndf
  EXPECT_EQ(config.at("distill").at("weights").at("dcd"), 0.5);
  const auto lines = read_jsonl(dir / "full" / "metrics.jsonl");
  ASSERT_EQ(lines.size(), 16u);
  for (const char* key : {"G_gan", "G_recon", "G_dcd", "G_dcd_gan", "G_wkd", "D_real", "D_fake", "D_teacher_real",
                          "D_teacher_fake"}) {
    EXPECT_TRUE(lines[0].contains(key)) << key;
  }
  EXPECT_EQ(ganlite::io::read_safetensors_header(dir / "full" / "checkpoints" / "latest_net_D.safetensors").metadata.at("ndf"), "2");

  ASSERT_NO_FATAL_FAILURE(run_and_sigkill_after_first_checkpoint(distill_args(dir / "killed", "dcd+wkd") + extra, dir / "killed"));
  EXPECT_EQ(run_cli("distill --resume '" + (dir / "killed").string() + "' --student-ndf 4 -q").exit_code, 2);
  const auto resumed = run_cli("distill --resume '" + (dir / "killed").string() + "' --threads 1 -q");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;

  std::map<std::string, torch::Tensor> tb;
  std::map<std::string, int> compared;
  ASSERT_NO_FATAL_FAILURE(expect_same_checkpoints(dir / "full", dir / "killed", &tb, &compared));
  EXPECT_GT(compared["D_teacher"], 3);
  EXPECT_GT(compared["opt_D_teacher"], 3);
  EXPECT_GT(compared["A_dcd"], 8);          // 4 adapters: conv weight, BatchNorm weight, bias, stats
  EXPECT_GT(compared["A_dcd_teacher"], 8);  // psi_T, with its BatchNorm running stats
  expect_same_metrics_log(dir / "full", dir / "killed");
}

TEST(DistillCli, CycleGanMobileStudentBothDirectionsAndMethodNone) {
  TempDir dir;
  const auto data = dir / "s2s";
  const auto made = run_cli("make-dataset --kind shapes2stripes --count 4 --test-count 2 --size 32 --seed 1 -q --out '" +
                            data.string() + "'");
  ASSERT_EQ(made.exit_code, 0) << made.output;
  ganlite::nn::ArchConfig c;
  c.arch = "resnet";
  c.n_blocks = 3;
  c.ngf = 8;
  torch::manual_seed(2);
  const auto teacher = dir / "teacher.safetensors";
  ganlite::io::save_generator(teacher, *ganlite::nn::make_generator(c));
  c.arch = "mobile_resnet";
  c.ngf = 4;
  const auto student = dir / "student.safetensors";
  ganlite::io::save_generator(student, *ganlite::nn::make_generator(c));
  for (const std::string& run : {std::string("dcd+wkd AtoB"), std::string("none BtoA")}) {
    const std::string method = run.substr(0, run.find(' ')), direction = run.substr(run.find(' ') + 1);
    const auto out = dir / (method + direction);
    // The second run builds its student from an architecture (--student-arch), as GAN Compression does.
    const std::string student_flag = method == "none" ? "--student-arch mobile_resnet --student-ngf 4"
                                                      : "--student '" + student.string() + "'";
    const std::string args = "distill --method " + method + " --direction " + direction + " --teacher '" +
                             teacher.string() + "' " + student_flag + " --task cyclegan --data '" + data.string() +
                             "' --ndf 4 --load-size 32 --crop-size 32 --n-epochs 1 --n-epochs-decay 0"
                             " --sample-freq 0 --log-freq 1 --threads 1 --workers 1 --json --out '" + out.string() + "'";
    if (method == "none") {
      // Killed before its first checkpoint, the same command starts it again from step 0.
      ASSERT_NO_FATAL_FAILURE(run_cli_killed_while_writing("latest.ckpt.safetensors", args));
      EXPECT_EQ(logged_steps(out), (std::vector<int64_t>{1, 2, 3, 4}));
    }
    const auto r = run_cli(args);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto lines = read_jsonl(out / "metrics.jsonl");
    ASSERT_EQ(lines.size(), 4u) << run;
    EXPECT_EQ(logged_steps(out), (std::vector<int64_t>{1, 2, 3, 4})) << run;
    EXPECT_EQ(lines[0].contains("G_dcd"), method == "dcd+wkd") << run;
    EXPECT_TRUE(lines[0].contains("G_recon")) << run;
    if (method == "none") {
      const auto fresh = ganlite::io::load_generator(out / "student_init.safetensors", torch::kCPU);
      EXPECT_EQ(fresh->config().arch, "mobile_resnet");
      EXPECT_EQ(fresh->config().ngf, 4);
    }
  }
  const auto both = run_cli("distill --method none --teacher '" + teacher.string() + "' --student '" +
                            student.string() + "' --student-arch mobile_resnet --task cyclegan --data '" +
                            data.string() + "' -q --out '" + (dir / "both").string() + "'");
  EXPECT_EQ(both.exit_code, 2);
  EXPECT_NE(both.output.find("exclude each other"), std::string::npos) << both.output;
}

TEST(DistillCli, RefusesBadMethodsAndBatchOfOneForKa) {
  TempDir dir;
  const auto bad = run_cli(distill_args(dir / "bad", "ka+foo"));
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.output.find("ka, mse, wkd"), std::string::npos) << bad.output;
  const auto one = run_cli(distill_args(dir / "one", "ka", 1));
  EXPECT_EQ(one.exit_code, 2);
  EXPECT_NE(one.output.find("--batch-size >= 2"), std::string::npos) << one.output;
  EXPECT_FALSE(fs::exists(dir / "one" / "config.json"));
  const auto help = run_cli("distill --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.output.find("--restore-d"), std::string::npos);
}
