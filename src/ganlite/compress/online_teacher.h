// Online distillation (OMGD, and DCD's released scheme built on it; methods.md 3.4,
// docs/fidelity.md "Online teacher"): the teacher generator and its discriminator are trained from
// scratch together with the student, and the student learns from the teacher's output of the
// same step. `ganlite distill --online-teacher ARCH:NGF [--n-dis N]`.
//
// Per step (DistillTask::train_step, as DCD-official's Pix2PixBestDistiller.optimize_parameters):
//  1. the teacher G runs on the step's inputs (train mode); its image and taps, detached, are
//     what the student learns from;
//  2. on every n_dis-th step (1-based, the release's `steps % n_dis == 0`) the teacher trains on
//     the task's own losses:
//       paired (pix2pix): D on 0.5 * (fake + real) and G on GAN + lambda_L1 (100) * L1(T(A), B),
//       both gradients taken before either optimizer steps (so G's GAN term sees D as it was),
//       then D and G step; the forward of 1. is reused;
//       unpaired (CycleGAN): one step of the registered task (both generators with cycle and
//       identity losses, then both discriminators on the history pools), as the release's
//       CycleGAN teacher; the distilled direction's G and the D judging its outputs are the teacher;
//  3. the student steps on its losses (student_losses below, plus the run's terms; DCD reads the
//     teacher D updated in 2.). Nothing of the student's loss reaches the teacher's weights.
//
// The student's own losses against T(A) (the released student's, all optional by weight):
// VGG16 relu2_2 feature L1 and Gram-style L1 over relu1_2..relu4_3 (the DCD method's
// --vgg-weights, --lambda-vgg, --lambda-style), SSIM as the release's pytorch_ssim
// (lambda_ssim x (1 - SSIM)) and total variation (lambda_tv x sum of absolute neighbour
// differences), OMGD's cycleganbest_distiller.backward_G_Student.
#pragma once
#include <torch/nn/module.h>
#include <torch/optim/adam.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ganlite/compress/distill_config.h"
#include "ganlite/compress/distill_loss.h"
#include "ganlite/compress/vgg16.h"
#include "ganlite/data/loader.h"
#include "ganlite/train/gan_loss.h"
#include "ganlite/train/task.h"

namespace ganlite::compress {

struct OnlineTeacherSpec {
  std::string arch;  // a registered generator family
  int ngf = 0;
};
// "ARCH:NGF" (e.g. "mobile_resnet:64"); UsageError naming --online-teacher otherwise.
OnlineTeacherSpec parse_online_teacher(const std::string& spec);
// The release scripts' n_dis: 4 for unpaired tasks (CycleGAN), 1 for paired ones (pix2pix).
int default_n_dis(const std::string& task);
// The teacher's training settings: the run's, with the teacher generator (its norm the default of
// its family for the task) and the teacher D's width (`teacher_ndf` when set, else the run's ndf).
train::TrainConfig online_teacher_config(const train::TrainConfig& run, const DistillConfig& distill);

// The release's SSIM (models/modules/pytorch_ssim.py): 11x11 Gaussian window (sigma 1.5) per
// channel, zero padding 5, C1 = 0.01^2, C2 = 0.03^2 on the images as given ([-1, 1]), mean of
// the map.
torch::Tensor release_ssim(const torch::Tensor& x, const torch::Tensor& y);
// Sum of |x[..., j+1] - x[..., j]| over rows and columns (OMGD's loss_G_tv before its weight).
torch::Tensor total_variation(const torch::Tensor& x);

class OnlineTeacher {
 public:
  // Builds (seeded by the caller) the teacher networks and their optimizers on `device`; loads
  // VGG16 when the distill config names weights.
  OnlineTeacher(const train::TrainConfig& run, const DistillConfig& distill, const torch::Device& device);

  // 1. above: the teacher's image and taps on `real_a` (paired: with the graph its step reuses).
  nn::GeneratorOutput forward(const torch::Tensor& real_a);
  // 2. above, and counts the step. `batch` is the loader's (unpaired teachers train both
  // directions from it); real_a / real_b are the distilled direction's. Returns the teacher's
  // losses, prefixed "T_", on the steps it trains, nothing on the others.
  train::Losses step(const data::Batch& batch, const torch::Tensor& real_a, const torch::Tensor& real_b,
                     const nn::GeneratorOutput& teacher_out);
  // Whether the next step() trains the teacher.
  bool due() const;
  int64_t steps_done() const;

  // The student's own losses against the teacher image (already weighted): G_vgg, G_style (with
  // VGG weights), G_ssim, G_tv (with non-zero weights).
  NamedLosses student_losses(const torch::Tensor& student_image, const torch::Tensor& teacher_image);

  nn::Generator generator() const { return generator_; }
  nn::Discriminator discriminator() const { return discriminator_; }
  bool has_vgg() const { return !vgg_.is_empty(); }
  const train::TrainConfig& config() const { return config_; }
  int d_input_nc() const { return paired_ ? 6 : 3; }

  // For the checkpoint: "T_state" (step count, best validation PSNR), the networks as "T_<name>",
  // optimizers as "T_<name>"; unpaired teachers' pools as extra state.
  std::vector<std::pair<std::string, torch::nn::Module*>> modules();
  std::vector<std::pair<std::string, torch::optim::Optimizer*>> optimizers();
  void save_extra_state(train::NamedTensors& tensors, train::Metadata& metadata) const;
  void load_extra_state(const train::NamedTensors& tensors, const train::Metadata& metadata);
  // Keeps the best validation PSNR of the teacher (checkpointed); true when `psnr` beats it.
  bool record_validation(double psnr);

 private:
  train::Losses paired_step(const torch::Tensor& real_a, const torch::Tensor& real_b, const nn::GeneratorOutput& out);

  train::TrainConfig config_;
  torch::Device device_;
  bool paired_;
  int n_dis_;
  nn::Generator generator_;
  nn::Discriminator discriminator_;
  std::unique_ptr<train::TrainTask> unpaired_task_;  // the registered task training both directions
  std::unique_ptr<torch::optim::Adam> optimizer_g_;  // paired teachers
  std::unique_ptr<torch::optim::Adam> optimizer_d_;
  train::GanLoss gan_loss_;
  std::shared_ptr<torch::nn::Module> state_;  // buffers "steps" (int64), "best_psnr" (float64)
  Vgg16Features vgg_{nullptr};
  double lambda_vgg_feature_, lambda_vgg_style_, lambda_ssim_, lambda_tv_;
};

}  // namespace ganlite::compress
