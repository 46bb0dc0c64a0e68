// CAT's distiller as a TrainTask (methods.md 3.2-3.5; CAT distillers/inception_distiller.py):
// a frozen teacher G (eval mode, no gradients), a student G, one discriminator, and any sum of
// distillation terms (distill_loss.h). Per step, as CAT's optimize_parameters: teacher and
// student forward, D step (0.5 * (fake + real)), the terms' pre-G hooks, then the G step
// (GAN Compression's MSE: D's step after G's backward, against the same D; UpdateOrder):
//   pix2pix:  lambda_gan * GAN(D(A, S(A))) + lambda_recon * L1(S(A), B)    + sum_m w_m * L_m
//   cyclegan: lambda_gan * GAN(D(S(A)))    + lambda_recon * L1(S(A), T(A)) + sum_m w_m * L_m
// (CycleGAN: one direction, D sees real B vs S(A), no cycle loss, no image pool. With
// direction BtoA the roles swap: the teacher is the CycleGAN's G_B and the inputs are B images,
// so WKD / DCD can distil each direction's student from its teacher, methods.md 3.5.)
// The student's D may be narrower than the teacher run's (distill.student_ndf), or pruned from
// restore_d (distill.prune_d_ratio, discriminator_prune.h). DCD adds its teacher D (dcd_term.h).
// With an online teacher (distill.online_teacher, online_teacher.h) there is no frozen teacher and
// no student D: the teacher G and D train alongside the student and the student learns from the
// teacher's output of each step (its own losses, the terms, the recon term only when weighted).
// The Trainer runs it like any task: checkpoints, exact resume, logs, samples, validation of S
// (and of an online teacher, kept as best_net_G_teacher by its own best).
#pragma once
#include <torch/optim/adam.h>

#include <memory>

#include "ganlite/compress/distill_config.h"
#include "ganlite/compress/distill_loss.h"
#include "ganlite/compress/online_teacher.h"
#include "ganlite/io/checkpoint.h"
#include "ganlite/nn/discriminator.h"
#include "ganlite/train/gan_loss.h"
#include "ganlite/train/mixed_precision.h"
#include "ganlite/train/spade_task.h"
#include "ganlite/train/task.h"
#include "ganlite/train/trainer.h"
#include "ganlite/train/train_config.h"
#include "ganlite/train/validation.h"

namespace ganlite::compress {

// The config of a distillation run: `base` (data, schedule, D, seed ...) resolved, with the
// student's architecture (read from its file) as `generator`, and `distill` resolved for the
// task with the run's settings adopted. Validates both; throws UsageError / Error naming the bad
// input.
DistillRunConfig make_distill_run_config(const train::TrainConfig& base, const DistillConfig& distill);

// The metadata of a discriminator file given with `flag`; Error when it holds another kind.
io::Metadata discriminator_file_metadata(const std::string& path, const std::string& flag);

class DistillTask : public train::TrainTask {
 public:
  // `config` from make_distill_run_config (or a run's config.json). Loads the teacher and the
  // student from their files; `fresh_start` also loads distill.restore_d into D (a resumed run
  // takes every weight from its checkpoint instead).
  DistillTask(const DistillRunConfig& config, const torch::Device& device, bool fresh_start = true);

  std::string name() const override { return "distill"; }
  train::Losses train_step(const data::Batch& batch) override;
  // "G" (student), "D", "T" (the frozen teacher, so a checkpoint is self-contained), "A_<method>"
  // for terms with parameters (MSE adaptors, DCD's psi_S), then the terms' extra modules
  // (DCD: D_teacher, A_dcd_teacher).
  std::vector<std::pair<std::string, torch::nn::Module*>> modules() override;
  // "G" (student and adaptors), "D", then the terms' extra optimizers.
  std::vector<std::pair<std::string, torch::optim::Optimizer*>> optimizers() override;
  std::vector<std::pair<std::string, nn::Generator>> export_generators() override { return {{"G", student_}}; }
  // "D", or with an online teacher its D as "D_teacher".
  std::vector<std::pair<std::string, torch::nn::Module*>> export_discriminators() override;
  train::Metadata discriminator_metadata() const override;
  nn::Generator sample_generator() override { return student_; }
  // Label-map tasks train with SPADE's TTUR unless no_ttur: the student's lr / 2, its D's lr * 2.
  double lr_factor(const std::string& optimizer) const override;
  // An online teacher's generator as "G_teacher" (latest / epoch / its own best files).
  std::vector<std::pair<std::string, nn::Generator>> tracked_generators() override;
  bool record_validation(const std::string& name, double psnr) override;
  void save_extra_state(train::NamedTensors& tensors, train::Metadata& metadata) const override;
  void load_extra_state(const train::NamedTensors& tensors, const train::Metadata& metadata) override;

  nn::Generator teacher() { return teacher_; }  // the online teacher's G when there is one
  OnlineTeacher* online_teacher() { return online_.get(); }
  nn::Generator student() { return student_; }
  nn::Discriminator discriminator() { return discriminator_; }
  const std::vector<std::shared_ptr<DistillTerm>>& terms() const { return terms_; }
  const DistillConfig& distill_config() const { return distill_; }
  // The step order of the student's D and G (run_update_order of the methods); the online path
  // has no student D and keeps its own order (online_teacher.h).
  UpdateOrder update_order() const { return update_order_; }

 private:
  train::TrainConfig config_;
  DistillConfig distill_;
  torch::Device device_;
  train::MixedPrecision precision_;  // train/mixed_precision.h: fp32 unless --precision says otherwise
  bool paired_;  // pix2pix: conditional D and B as the recon target
  nn::Generator teacher_;
  nn::Generator student_;
  nn::Discriminator discriminator_;
  std::vector<std::shared_ptr<DistillTerm>> terms_;
  std::unique_ptr<OnlineTeacher> online_;
  // Label-map tasks (--task spade): the student's GAN terms are SPADE's (hinge over the
  // multi-scale D, feature matching, VGG19), as CAT distils GauGAN.
  std::unique_ptr<train::SpadeObjective> spade_;
  train::GanLoss gan_loss_;
  UpdateOrder update_order_;
  std::unique_ptr<torch::optim::Adam> optimizer_g_;
  std::unique_ptr<torch::optim::Adam> optimizer_d_;

  void build_student_discriminator(bool fresh_start, int d_input_nc);
  train::Losses online_train_step(const data::Batch& batch);
  // Adds each term's weighted loss and its extra generator losses to `loss_g`, logging them.
  void add_term_losses(const DistillInputs& inputs, torch::Tensor& loss_g, train::Losses& losses);
};

// Seeds torch with config.train.seed (D and adaptor init are part of the run's seed), then
// builds a DistillTask.
std::unique_ptr<train::TrainTask> make_distill_task(const DistillRunConfig& config, const torch::Device& device,
                                                    bool fresh_start);
// Runs a distillation on the shared training loop (train::train): `options` (run folder, resume,
// hooks) gain the distiller as task_factory (train() says whether the run starts fresh) and
// config.json with the "distill" section. On resume `config` is the run's stored config, with
// the session settings the caller allows to change.
train::TrainResult train_distill(const DistillRunConfig& config, train::TrainerOptions options);

// Channels of each tap of `generator` (one eval-mode forward without gradients on a
// size x size input; the generator's mode is restored).
std::vector<int64_t> tap_channels(nn::GeneratorImpl& generator, int64_t size, const torch::Device& device);

// A student judged on the validation set: against the truth, against its teacher's outputs
// (PSNR / SSIM of uint8-quantised images, PSNR capped at 100 dB), and the teacher's own score.
struct StudentScores {
  train::ValidationResult vs_truth;
  train::ValidationResult vs_teacher;
  train::ValidationResult teacher_vs_truth;
};
StudentScores score_student(nn::GeneratorImpl& student, nn::GeneratorImpl& teacher, const train::ValidationSet& set,
                            int max_images, const torch::Device& device);

}  // namespace ganlite::compress
