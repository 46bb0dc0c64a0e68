// Step parity of DCD and of online distillation (docs/fidelity.md, "DCD", "Online teacher") against
// independent PyTorch scripts (tests/parity/dcd_step.py, omgd_step.py), K = 3 steps from the same
// weights on the same batches, float64 on both sides, with the harness of test_parity.cpp and its
// tolerance (1e-6 relative; its header says why).
//  - DCD with a frozen teacher G, as ganlite implements the paper: student D, teacher D trained
//    online, adapters, the cut-D L1 at tap resolution (1-layer D) and resized (3-layer D).
//  - Online distillation (`--online-teacher`, n_dis 2 so the 3 steps train the teacher on step 2
//    only): OMGD's student losses (SSIM, TV) and DCD's term through the online teacher's D, with a
//    pix2pix teacher and with a whole CycleGAN teacher.
// The VGG16 terms are not in these steps (their weights are a user's file; tests/compress/test_dcd.cpp
// pins them against their definition).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "ganlite/compress/distill_task.h"
#include "ganlite/compress/online_teacher.h"
#include "ganlite/io/checkpoint.h"
#include "ganlite/nn/generator.h"
#include "ganlite/train/networks.h"
#include "ganlite/train/task_registry.h"
#include "parity_harness.h"
#include "test_support.h"

namespace ganlite {
namespace {

using parity::kSize;
using parity::kSteps;

train::TrainConfig tiny(const std::string& task, int n_layers_d) {
  train::TrainConfig c;
  c.task = task;
  c.dataroot = "unused-by-the-step";
  c.ndf = 4;
  c.netD = "n_layers";  // "basic" is the 3-layer D whatever n_layers_D says
  c.n_layers_D = n_layers_d;
  c.batch_size = 2;
  c.load_size = kSize;
  c.crop_size = kSize;
  c.lr = 2e-3;
  c.seed = 15;
  return c;
}

nn::ArchConfig mobile(int ngf, int n_blocks) {
  nn::ArchConfig a;
  a.arch = "mobile_resnet";
  a.ngf = ngf;
  a.n_blocks = n_blocks;
  a.norm = "instance";
  return a;
}

nlohmann::json d_json(const train::TrainConfig& resolved, int ndf) {
  return {{"ndf", ndf}, {"n_layers", resolved.n_layers_D}, {"norm", resolved.norm_D}};
}

parity::Tolerance tolerance(double lr) {
  parity::Tolerance tol;
  tol.weight_floor = lr;
  return tol;
}

// The task as `ganlite distill` builds it (run config, seeded factory), in float64.
struct Built {
  std::unique_ptr<train::TrainTask> owned;
  compress::DistillTask* task = nullptr;
  parity::NamedModules modules;
  train::TrainConfig resolved;
};

Built build(const train::TrainConfig& base, const compress::DistillConfig& d) {
  Built b;
  const auto run = compress::make_distill_run_config(base, d);
  b.owned = compress::make_distill_task(run, torch::kCPU, /*fresh_start=*/true);
  b.task = dynamic_cast<compress::DistillTask*>(b.owned.get());
  b.modules = b.task->modules();
  parity::to_double(b.modules);
  b.resolved = run.train.resolved();
  return b;
}

nlohmann::json common(const Built& b) {
  const auto& r = b.resolved;
  const auto& dc = b.task->distill_config();
  nlohmann::json s{{"gan_mode", r.gan_mode},
                   {"lr", r.lr},
                   {"beta1", r.beta1},
                   {"beta2", r.beta2},
                   {"paired", train::task_kind(r.task).paired},
                   {"teacher", b.task->teacher()->config().to_json()},
                   {"student", b.task->student()->config().to_json()},
                   {"lambda_recon", dc.lambda_recon},
                   {"lambda_gan", dc.lambda_gan},
                   {"teacher_tap_channels", compress::tap_channels(*b.task->teacher(), kSize, torch::kCPU)},
                   {"student_tap_channels", compress::tap_channels(*b.task->student(), kSize, torch::kCPU)}};
  if (dc.uses("dcd")) {
    s["weight"] = dc.weights.at("dcd");
    s["lambda_dcd_gan"] = std::get<double>(dc.option("lambda_dcd_gan"));
  }
  return s;
}

// DCD with a frozen teacher: pix2pix with a 1-layer D (8x8 taps enter it as they are) and
// CycleGAN with a 3-layer D (too small for it: resized to the image size).
TEST(StepParity, DcdMatchesThePaperFormWithAFrozenTeacher) {
  SKIP_WITHOUT_REFERENCE();
  for (const auto& [task, n_layers] : std::vector<std::pair<std::string, int>>{{"pix2pix", 1}, {"cyclegan", 3}}) {
    SCOPED_TRACE(task);
    testing::TempDir dir;
    torch::manual_seed(21);
    io::save_generator(dir / "teacher.safetensors", *nn::make_generator(mobile(8, 3)));
    io::save_generator(dir / "student.safetensors", *nn::make_generator(mobile(4, 3)));
    compress::DistillConfig d;
    d.methods = {"dcd"};
    d.teacher = (dir / "teacher.safetensors").string();
    d.student = (dir / "student.safetensors").string();
    d.weights["dcd"] = 0.5;
    const auto b = build(tiny(task, n_layers), d);
    auto s = common(b);
    s["discriminator"] = d_json(b.resolved, b.resolved.ndf);
    s["teacher_discriminator"] = d_json(b.resolved, static_cast<int>(std::get<int64_t>(b.task->distill_config().option("teacher_ndf"))));
    s["d_input_nc"] = s["paired"].get<bool>() ? 6 : 3;
    parity::check_parity(*b.task, b.modules, parity::fixed_batches(kSteps, 2, kSize, 4), "dcd_step.py", s,
                         tolerance(b.resolved.lr), "dcd frozen teacher (" + task + ")");
  }
}

// Online distillation, n_dis 2: pix2pix with OMGD's student (SSIM x10, TV x1e-5, no D, no recon)
// and with DCD's (its term and GAN through the online teacher's D, 1-layer so the taps enter it as
// they are); CycleGAN with DCD's, the teacher a whole CycleGAN whose D_A the term reads.
TEST(StepParity, OnlineDistillationMatchesTheReleasesStep) {
  SKIP_WITHOUT_REFERENCE();
  for (const auto& [task, method] : std::vector<std::pair<std::string, std::string>>{
           {"pix2pix", "none"}, {"pix2pix", "dcd"}, {"cyclegan", "dcd"}}) {
    SCOPED_TRACE(task + " " + method);
    testing::TempDir dir;
    torch::manual_seed(22);
    io::save_generator(dir / "student.safetensors", *nn::make_generator(mobile(4, 3)));
    compress::DistillConfig d;
    d.methods = compress::parse_distill_methods(method);
    d.student = (dir / "student.safetensors").string();
    d.online_teacher = "mobile_resnet:8";
    d.n_dis = 2;
    d.allow_no_vgg = true;
    d.lambda_ssim = 10;
    d.lambda_tv = 1e-5;
    const auto b = build(tiny(task, 1), d);
    const auto* t = b.task->online_teacher();
    ASSERT_NE(t, nullptr);
    auto s = common(b);
    const auto& dc = b.task->distill_config();
    const auto& tc = t->config();
    s["dcd"] = method == "dcd";
    s["n_dis"] = dc.n_dis;
    s["lambda_L1"] = tc.lambda_L1;
    s["lambda_A"] = tc.lambda_A;
    s["lambda_B"] = tc.lambda_B;
    s["lambda_identity"] = tc.lambda_identity;
    s["lambda_ssim"] = dc.lambda_ssim;
    s["lambda_tv"] = dc.lambda_tv;
    s["teacher_discriminator"] = d_json(tc, tc.ndf);
    parity::check_parity(*b.task, b.modules, parity::fixed_batches(kSteps, 2, kSize, 5), "omgd_step.py", s,
                         tolerance(b.resolved.lr), "online distillation (" + task + ", " + method + ")");
  }
}

}  // namespace
}  // namespace ganlite
