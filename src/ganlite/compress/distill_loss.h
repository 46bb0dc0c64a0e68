// Distillation terms with one interface, so a run sums any combination (`--method ka+mse`) and
// later methods plug in: KA (CAT), feature MSE with learned adaptors (GAN Compression), WKD
// (wavelet detail bands of the images), DCD (dcd_term.h: its own teacher D and optimizer through
// extra_modules / extra_optimizers, updated in before_generator_step).
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>
#include <torch/optim/optimizer.h>
#include <torch/types.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ganlite/compress/distill_config.h"
#include "ganlite/nn/discriminator.h"
#include "ganlite/nn/generator.h"

namespace ganlite::compress {

// What a term sees of one step. `teacher` was computed in eval mode without gradients.
struct DistillInputs {
  torch::Tensor real_a;
  torch::Tensor real_b;              // pix2pix: the paired target; cyclegan: an unpaired B image
  const nn::GeneratorOutput* student = nullptr;  // image and taps, with gradients
  const nn::GeneratorOutput* teacher = nullptr;
};

// What a term is built from: the task and the tap widths of both generators.
struct DistillContext {
  std::string task;                            // pix2pix | cyclegan
  torch::Device device = torch::kCPU;
  std::vector<int64_t> student_tap_channels;   // in tap order (forward_with_taps)
  std::vector<int64_t> teacher_tap_channels;
  const DistillConfig* config = nullptr;       // resolved

  // DCD: the teacher discriminator (built and initialised, or restored, by the task), the
  // run's GAN mode and Adam settings for its optimizer.
  nn::Discriminator teacher_discriminator;
  std::string gan_mode = "lsgan";
  double lr = 2e-4, beta1 = 0.5, beta2 = 0.999;
};

using TermLosses = std::vector<std::pair<std::string, double>>;
using NamedLosses = std::vector<std::pair<std::string, torch::Tensor>>;

class DistillTerm : public torch::nn::Module {
 public:
  ~DistillTerm() override = default;
  virtual std::string method() const = 0;  // "ka": logged as G_ka
  // The unweighted loss to minimise (the task multiplies it by the method's weight).
  virtual torch::Tensor loss(const DistillInputs& inputs) = 0;

  // This module's own parameters (e.g. MSE adaptors) are trained by the student's optimizer
  // and saved in the checkpoint as "A_<method>" when it has any.
  bool has_student_side_parameters() const { return !parameters().empty(); }
  // Networks with their own optimizers (DCD's teacher D), checkpointed under these names.
  virtual std::vector<std::pair<std::string, torch::nn::Module*>> extra_modules() { return {}; }
  virtual std::vector<std::pair<std::string, torch::optim::Optimizer*>> extra_optimizers() { return {}; }
  // Runs after the D step and before the G step (DCD updates its teacher D here); returns
  // losses to log.
  virtual TermLosses before_generator_step(const DistillInputs& /*inputs*/) { return {}; }
  // Further generator losses, already weighted, added to the G loss and logged under their
  // names (DCD: G_dcd_gan, G_vgg, G_style).
  virtual NamedLosses extra_generator_losses(const DistillInputs& /*inputs*/) { return {}; }
};

// CAT: -sum over taps of kernel_alignment(student tap, teacher tap). A batch of one sample
// (e.g. the last of an epoch) has KA exactly 1 per tap: the constant is returned, no gradient.
class KaTermImpl : public DistillTerm {
 public:
  std::string method() const override { return "ka"; }
  torch::Tensor loss(const DistillInputs& inputs) override;
};
TORCH_MODULE(KaTerm);

// GAN Compression: per tap a learned 1x1 conv (with bias, PyTorch's default init) maps the
// student width to the teacher's; sum over taps of MSE to the teacher feature.
class MseTermImpl : public DistillTerm {
 public:
  explicit MseTermImpl(const DistillContext& context);
  std::string method() const override { return "mse"; }
  torch::Tensor loss(const DistillInputs& inputs) override;

  std::vector<torch::nn::Conv2d> adaptors;  // registered as "0", "1", ...
};
TORCH_MODULE(MseTerm);

// WKD: wavelet_detail_loss(S(A), T(A)) over the configured levels and distance.
class WkdTermImpl : public DistillTerm {
 public:
  WkdTermImpl(int levels, std::string distance) : levels_(levels), distance_(std::move(distance)) {}
  std::string method() const override { return "wkd"; }
  torch::Tensor loss(const DistillInputs& inputs) override;

 private:
  int levels_;
  std::string distance_;
};
TORCH_MODULE(WkdTerm);

// Builds the term of `method` on context.device (seed torch first for a reproducible init).
// Throws UsageError for an unknown method, Error when tap counts differ.
std::shared_ptr<DistillTerm> make_distill_term(const std::string& method, const DistillContext& context);

}  // namespace ganlite::compress
