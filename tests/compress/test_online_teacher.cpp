// Online distillation (compress/online_teacher.h; OMGD / DCD-official): the teacher G and D train
// from scratch alongside the student, on every n_dis-th step, with the release's step order; the
// student learns from the teacher's output of the step and never sends it a gradient; the online
// student's losses; config, refusals, and `ganlite distill --online-teacher` end to end with a
// bit-identical resume after SIGKILL.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "distill_fixtures.h"
#include "ganlite/compress/dcd_term.h"
#include "ganlite/compress/distill_task.h"
#include "ganlite/compress/online_teacher.h"
#include "ganlite/io/checkpoint.h"
#include "ganlite/io/safetensors.h"
#include "ganlite/nn/generator.h"
#include "ganlite/train/gan_loss.h"
#include "ganlite/train/networks.h"
#include "ganlite/train/trainer.h"
#include "ganlite/util/error.h"
#include "test_support.h"

namespace fs = std::filesystem;
using namespace ganlite;
using ganlite::testing::TempDir;
namespace gt = ganlite::testing;

namespace {

nn::ArchConfig mobile(int ngf) {
  nn::ArchConfig c;
  c.arch = "mobile_resnet";
  c.ngf = ngf;
  c.n_blocks = 3;
  c.norm = "instance";
  return c;
}

fs::path student_file(const TempDir& dir) {
  torch::manual_seed(17);
  const fs::path path = dir / "student.safetensors";
  io::save_generator(path, *nn::make_generator(mobile(2)));
  return path;
}

compress::DistillConfig online(const fs::path& student, const std::string& methods, int n_dis) {
  compress::DistillConfig d;
  d.methods = compress::parse_distill_methods(methods);
  d.student = student.string();
  d.online_teacher = "mobile_resnet:4";
  d.n_dis = n_dis;
  d.allow_no_vgg = true;
  return d;
}

std::unique_ptr<compress::DistillTask> make_task(const std::string& task, const compress::DistillConfig& d) {
  auto run = compress::make_distill_run_config(gt::base_config(task, 2), d);
  torch::manual_seed(run.train.seed);
  return std::make_unique<compress::DistillTask>(run, torch::kCPU, true);
}

bool same(const std::map<std::string, torch::Tensor>& a, const std::map<std::string, torch::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [k, t] : a) {
    if (!torch::equal(t, b.at(k))) return false;
  }
  return true;
}

bool has_loss(const train::Losses& losses, const std::string& name) {
  for (const auto& [n, v] : losses) {
    if (n == name) return true;
  }
  return false;
}

// No parameter of `m` holds a non-zero gradient.
bool no_gradient(torch::nn::Module& m) {
  for (const auto& p : m.parameters()) {
    if (p.grad().defined() && p.grad().abs().sum().item<double>() != 0) return false;
  }
  return true;
}

// A fresh network of the same kind holding `source`'s weights.
nn::Generator copy_generator(const nn::Generator& source) {
  auto g = nn::make_generator(source->config());
  io::load_state_dict(*g, io::state_dict(*source), true);
  g->train();
  return g;
}

}  // namespace

TEST(OnlineTeacher, SpecIsArchColonNgfOfARegisteredFamily) {
  const auto s = compress::parse_online_teacher("mobile_resnet:64");
  EXPECT_EQ(s.arch, "mobile_resnet");
  EXPECT_EQ(s.ngf, 64);
  for (const char* bad : {"mobile_resnet", "nope:4", "resnet:0", "resnet:4x", "resnet:", ":4", "resnet:99999"}) {
    EXPECT_THROW(compress::parse_online_teacher(bad), UsageError) << bad;
  }
  EXPECT_EQ(compress::default_n_dis("cyclegan"), 4);  // DCD-official's CycleGAN scripts
  EXPECT_EQ(compress::default_n_dis("pix2pix"), 1);   // its edges2shoes script
}

TEST(OnlineTeacher, SsimIsTheReleasesAndTotalVariationSumsNeighbourDifferences) {
  const auto x = torch::tensor({0.f, 1.f, 3.f, 7.f}).view({1, 1, 2, 2});
  // Columns: |1 - 0| + |7 - 3|; rows: |3 - 0| + |7 - 1|.
  EXPECT_EQ(compress::total_variation(x).item<float>(), 14.f);
  torch::manual_seed(1);
  const auto a = torch::rand({2, 3, 16, 16}, torch::kFloat64) * 2 - 1;
  EXPECT_NEAR(compress::release_ssim(a, a).item<double>(), 1.0, 1e-12);
  // One pixel of a constant image changed: by hand, every window over it loses structure, the
  // others are exact: the mean lies strictly between 0 and 1 and the same in any order of inputs.
  auto b = a.clone();
  b.index_put_({0, 0, 8, 8}, 1.0);
  const double s = compress::release_ssim(a, b).item<double>();
  EXPECT_LT(s, 1.0);
  EXPECT_GT(s, 0.9);
  EXPECT_EQ(s, compress::release_ssim(b, a).item<double>());
}

// Paired (pix2pix) run with n_dis 2: step 1 leaves the teacher alone (no gradient reaches it from
// the student's losses), step 2 trains it exactly as DCD-official's optimize_parameters does
// (reproduced by hand on copies: D's and G's gradients both taken before either steps), and the
// student's targets are the teacher's output before that update.
TEST(OnlineDistill, TeacherStepsEveryNDisStepsInTheReleasesOrderAndGetsNothingFromTheStudent) {
  TempDir dir;
  auto d = online(student_file(dir), "dcd", 2);
  d.lambda_ssim = 10;
  d.lambda_tv = 1e-5;
  auto task = make_task("pix2pix", d);
  auto* t = task->online_teacher();
  ASSERT_NE(t, nullptr);
  const auto batch = gt::fixed_batch(2);
  const auto g0 = gt::snapshot(*t->generator());
  const auto d0 = gt::snapshot(*t->discriminator());
  const auto s0 = gt::snapshot(*task->student());

  EXPECT_FALSE(t->due());
  const auto first = task->train_step(batch);
  EXPECT_TRUE(same(g0, gt::snapshot(*t->generator())));
  EXPECT_TRUE(same(d0, gt::snapshot(*t->discriminator())));
  EXPECT_TRUE(no_gradient(*t->generator()));
  EXPECT_TRUE(no_gradient(*t->discriminator()));
  EXPECT_FALSE(same(s0, gt::snapshot(*task->student())));
  EXPECT_FALSE(has_loss(first, "T_G_GAN"));
  for (const char* key : {"G_recon", "G_dcd", "G_dcd_gan", "G_ssim", "G_tv"}) EXPECT_TRUE(has_loss(first, key)) << key;
  EXPECT_EQ(gt::loss_of(first, "G_recon"), 0.0);  // the released online student has none
  EXPECT_FALSE(has_loss(first, "G_gan"));               // nor a D of its own
  EXPECT_FALSE(has_loss(first, "D_teacher_real"));      // the DCD term does not step the online D

  // Step 2 by hand on copies of the teacher (its Adam is fresh: step 1 did not train it).
  auto g = copy_generator(t->generator());
  const auto& tc = t->config();
  auto dsc = train::build_discriminator(tc, 6, torch::kCPU);
  io::load_state_dict(*dsc, io::state_dict(*t->discriminator()), true);
  const auto adam = torch::optim::AdamOptions(tc.lr).betas({tc.beta1, tc.beta2});
  torch::optim::Adam opt_g(g->parameters(), adam), opt_d(dsc->parameters(), adam);
  train::GanLoss gan(tc.gan_mode);
  const auto a = batch.a, b = batch.b;
  const auto fake = g->forward(a);
  const auto ab = torch::cat({a, fake}, 1);
  ((gan(dsc->forward(ab.detach()), false, true) + gan(dsc->forward(torch::cat({a, b}, 1)), true, true)) * 0.5).backward();
  train::set_requires_grad(*dsc, false);
  (gan(dsc->forward(ab), true, false) + torch::l1_loss(fake, b) * tc.lambda_L1).backward();
  opt_d.step();
  opt_g.step();
  // The student's SSIM target is the teacher's image before the update.
  torch::Tensor student_image;
  {
    torch::NoGradGuard no_grad;
    student_image = copy_generator(task->student())->forward(a);
  }
  const double expected_ssim = 10 * (1 - compress::release_ssim(student_image, fake.detach()).item<double>());

  EXPECT_TRUE(t->due());
  const auto second = task->train_step(batch);
  for (const char* key : {"T_G_GAN", "T_G_L1", "T_D_real", "T_D_fake"}) EXPECT_TRUE(has_loss(second, key)) << key;
  EXPECT_TRUE(same(gt::snapshot(*g), gt::snapshot(*t->generator())));
  EXPECT_TRUE(same(gt::snapshot(*dsc), gt::snapshot(*t->discriminator())));
  EXPECT_NEAR(gt::loss_of(second, "G_ssim"), expected_ssim, 1e-5 * expected_ssim);
  torch::Tensor after;
  {
    torch::NoGradGuard no_grad;
    after = t->generator()->forward(a);
  }
  const double with_updated = 10 * (1 - compress::release_ssim(student_image, after).item<double>());
  EXPECT_GT(std::abs(with_updated - expected_ssim), 1e-3 * expected_ssim);
  EXPECT_EQ(t->steps_done(), 2);
  EXPECT_FALSE(t->due());
}

// The same step with G's GAN term through the D already updated (the pix2pix training script's
// order) gives other teacher weights: the order above is pinned, not incidental.
TEST(OnlineDistill, GeneratorGanTermThroughTheUpdatedDWouldDiffer) {
  TempDir dir;
  auto task = make_task("pix2pix", online(student_file(dir), "none", 1));
  auto* t = task->online_teacher();
  const auto batch = gt::fixed_batch(2);
  auto g = copy_generator(t->generator());
  const auto& tc = t->config();
  auto dsc = train::build_discriminator(tc, 6, torch::kCPU);
  io::load_state_dict(*dsc, io::state_dict(*t->discriminator()), true);
  const auto adam = torch::optim::AdamOptions(tc.lr).betas({tc.beta1, tc.beta2});
  torch::optim::Adam opt_g(g->parameters(), adam), opt_d(dsc->parameters(), adam);
  train::GanLoss gan(tc.gan_mode);
  const auto fake = g->forward(batch.a);
  const auto ab = torch::cat({batch.a, fake}, 1);
  ((gan(dsc->forward(ab.detach()), false, true) + gan(dsc->forward(torch::cat({batch.a, batch.b}, 1)), true, true)) *
   0.5).backward();
  opt_d.step();
  train::set_requires_grad(*dsc, false);
  (gan(dsc->forward(ab), true, false) + torch::l1_loss(fake, batch.b) * tc.lambda_L1).backward();
  opt_g.step();
  task->train_step(batch);
  EXPECT_TRUE(same(gt::snapshot(*dsc), gt::snapshot(*t->discriminator())));  // D's own step agrees
  EXPECT_FALSE(same(gt::snapshot(*g), gt::snapshot(*t->generator())));
}

// CycleGAN: the registered task trains both directions every n_dis-th step (its losses prefixed
// T_); the distilled direction's G and D are the teacher; BtoA takes G_B and D_B.
TEST(OnlineDistill, CycleGanTeacherIsTheRegisteredTaskAndHonoursNDis) {
  TempDir dir;
  for (const std::string direction : {"AtoB", "BtoA"}) {
    SCOPED_TRACE(direction);
    auto d = online(student_file(dir), "none", 0);
    auto base = gt::base_config("cyclegan", 2);
    base.direction = direction;
    auto run = compress::make_distill_run_config(base, d);
    EXPECT_EQ(run.distill.n_dis, 4);  // the release's CycleGAN default
    run.distill.n_dis = 3;
    torch::manual_seed(run.train.seed);
    compress::DistillTask task(run, torch::kCPU, true);
    auto* t = task.online_teacher();
    std::map<std::string, std::map<std::string, torch::Tensor>> before;
    for (const auto& [name, m] : t->modules()) before[name] = gt::snapshot(*m);
    const auto batch = gt::fixed_batch(2);
    for (int step = 1; step <= 3; ++step) {
      const auto losses = task.train_step(batch);
      EXPECT_EQ(has_loss(losses, "T_G_A"), step == 3) << step;
      EXPECT_EQ(has_loss(losses, "T_cycle_B"), step == 3) << step;
      if (step == 2) {
        for (const auto& [name, m] : t->modules()) {
          if (name != "T_state") {
            EXPECT_TRUE(same(before[name], gt::snapshot(*m))) << name;
          }
        }
      }
    }
    for (const auto& [name, m] : t->modules()) EXPECT_FALSE(same(before[name], gt::snapshot(*m))) << name;
    const std::string side = direction == "AtoB" ? "A" : "B";
    std::map<std::string, torch::nn::Module*> by_name;
    for (const auto& [name, m] : t->modules()) by_name[name] = m;
    EXPECT_EQ(by_name.at("T_G_" + side), t->generator().get());
    EXPECT_EQ(by_name.at("T_D_" + side), t->discriminator().get());
  }
}

TEST(OnlineDistill, ConfigRefusalsAndJson) {
  TempDir dir;
  const auto student = student_file(dir);
  auto d = online(student, "none", 0);
  d.allow_no_vgg = false;
  try {
    d.resolved("pix2pix").validate(1);
    ADD_FAILURE() << "an online run without VGG weights must be refused";
  } catch (const UsageError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("--vgg-weights"), std::string::npos) << what;
    EXPECT_NE(what.find("--allow-no-vgg"), std::string::npos) << what;
  }
  d.set_option("vgg_weights", std::string("vgg16.pth"));  // a dcd option, read by the online student
  EXPECT_NO_THROW(d.resolved("pix2pix").validate(1));

  auto both = online(student, "none", 0);
  both.teacher = "t.safetensors";
  EXPECT_THROW(both.validate(1), UsageError);
  auto with_d = online(student, "none", 0);
  with_d.student_ndf = 8;
  EXPECT_THROW(with_d.validate(1), UsageError);
  compress::DistillConfig frozen;
  frozen.teacher = "t.safetensors";
  frozen.student = student.string();
  frozen.n_dis = 2;
  EXPECT_THROW(frozen.validate(1), UsageError);  // --n-dis belongs to --online-teacher
  frozen.n_dis = 0;
  EXPECT_NO_THROW(frozen.validate(1));

  // JSON: the online fields round-trip; a config without them (every run written before) is off,
  // and a frozen-teacher run's JSON does not gain them.
  auto r = online(student, "dcd", 3);
  r.lambda_ssim = 10;
  r.lambda_tv = 1e-5;
  const auto back = compress::DistillConfig::from_json_string(r.to_json_string(), "mem.json");
  EXPECT_EQ(back.online_teacher, "mobile_resnet:4");
  EXPECT_EQ(back.n_dis, 3);
  EXPECT_TRUE(back.allow_no_vgg);
  EXPECT_EQ(back.lambda_ssim, 10);
  EXPECT_EQ(back.lambda_tv, 1e-5);
  EXPECT_EQ(back.to_json_string(), r.to_json_string());
  const auto frozen_json = frozen.to_json();
  for (const char* key : {"online_teacher", "n_dis", "allow_no_vgg", "lambda_ssim", "lambda_tv"}) {
    EXPECT_FALSE(frozen_json.contains(key)) << key;
  }
  const auto old = compress::DistillConfig::from_json_string(frozen.to_json_string(), "old.json");
  EXPECT_FALSE(old.online());
  EXPECT_EQ(old.n_dis, 0);
  EXPECT_EQ(d.resolved("cyclegan").lambda_recon, 0.0);
  EXPECT_EQ(d.resolved("cyclegan").n_dis, 4);
}

// `ganlite distill --online-teacher` on a tiny edges2shapes set: teacher files beside the
// student's, its validation and best file, refusal without VGG weights, bit-identical resume
// after SIGKILL (n_dis 3 with checkpoints every 2 steps: the step count must come back too).
TEST(OnlineDistillCli, RunWritesTeacherFilesAndResumesBitIdenticallyAfterSigkill) {
  TempDir dir;
  const auto data = dir / "e2s";
  auto r = gt::run_cli("make-dataset --kind edges2shapes --count 8 --test-count 2 --size 32 --seed 1 -q --out '" +
                            data.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto student = student_file(dir);
  auto args = [&](const fs::path& out, const std::string& extra) {
    return "distill --method dcd --online-teacher mobile_resnet:4 --n-dis 3 --student '" + student.string() +
           "' --task pix2pix --data '" + data.string() +
           "' --batch-size 2 --ndf 4 --load-size 32 --crop-size 32 --n-epochs 1 --n-epochs-decay 1 "
           "--save-latest-freq 2 --sample-freq 0 --log-freq 1 --threads 1 --workers 1 --seed 3 -q --out '" +
           out.string() + "'" + extra;
  };
  const auto refused = gt::run_cli(args(dir / "novgg", ""));
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.output.find("--allow-no-vgg"), std::string::npos) << refused.output;

  const auto full = gt::run_cli(args(dir / "full", " --allow-no-vgg --lambda-ssim 10"));
  ASSERT_EQ(full.exit_code, 0) << full.output;
  const auto config = nlohmann::json::parse(gt::read_text_file(dir / "full" / "config.json"));
  EXPECT_EQ(config.at("distill").at("online_teacher"), "mobile_resnet:4");
  EXPECT_EQ(config.at("distill").at("n_dis"), 3);
  const auto lines = gt::read_jsonl(dir / "full" / "metrics.jsonl");
  ASSERT_EQ(lines.size(), 8u);  // 4 batches x 2 epochs
  for (size_t i = 0; i < lines.size(); ++i) EXPECT_EQ(lines[i].contains("T_G_L1"), (i + 1) % 3 == 0) << i;
  const auto ckpt = dir / "full" / "checkpoints";
  for (const char* f : {"latest_net_G.safetensors", "latest_net_G_teacher.safetensors",
                        "best_net_G_teacher.safetensors", "latest_net_D_teacher.safetensors"}) {
    EXPECT_TRUE(fs::exists(ckpt / f)) << f;
  }
  EXPECT_FALSE(fs::exists(ckpt / "latest_net_D.safetensors"));
  const auto teacher = io::load_generator(ckpt / "latest_net_G_teacher.safetensors", torch::kCPU);
  EXPECT_EQ(teacher->config().arch, "mobile_resnet");
  EXPECT_EQ(teacher->config().ngf, 4);
  const auto val = gt::read_jsonl(dir / "full" / "val.jsonl");
  ASSERT_EQ(val.size(), 2u);
  EXPECT_TRUE(val[0].contains("G_teacher_psnr"));

  ASSERT_NO_FATAL_FAILURE(gt::run_and_sigkill_after_first_checkpoint(args(dir / "killed", " --allow-no-vgg --lambda-ssim 10"),
                                                                          dir / "killed"));
  const auto resumed = gt::run_cli("distill --resume '" + (dir / "killed").string() + "' --threads 1 -q");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  const auto a = io::load_safetensors(train::latest_checkpoint_path(dir / "full"));
  const auto b = io::load_safetensors(train::latest_checkpoint_path(dir / "killed"));
  std::map<std::string, torch::Tensor> tb(b.tensors.begin(), b.tensors.end());
  std::map<std::string, int> compared;
  for (const auto& [key, t] : a.tensors) {
    if (key.rfind("rng.", 0) == 0) continue;
    ASSERT_TRUE(tb.count(key)) << key;
    EXPECT_TRUE(torch::equal(t, tb.at(key))) << key;
    ++compared[key.substr(0, key.find('.'))];
  }
  EXPECT_EQ(a.tensors.size(), b.tensors.size());
  EXPECT_EQ(compared["T_state"], 2);
  EXPECT_GT(compared["T_G"], 5);
  EXPECT_GT(compared["opt_T_D"], 3);
  EXPECT_GT(compared["A_dcd_teacher"], 3);
  gt::expect_same_metrics_log(dir / "full", dir / "killed");
  EXPECT_TRUE(torch::equal(io::load_safetensors(ckpt / "best_net_G_teacher.safetensors").tensors.front().second,
                           io::load_safetensors(dir / "killed" / "checkpoints" / "best_net_G_teacher.safetensors")
                               .tensors.front()
                               .second));
}
