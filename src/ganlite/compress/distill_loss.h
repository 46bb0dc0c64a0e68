// The interface of a distillation term, so a run sums any combination (`--method ka+mse`) and
// methods plug in (method_registry.h): KA (ka_method.cpp, CAT), feature MSE with learned adaptors
// (mse_method.cpp, GAN Compression), WKD (wkd_method.cpp, wavelet detail bands of the images),
// DCD (dcd_term.h: its own teacher D and optimizer through extra_modules / extra_optimizers,
// updated in before_generator_step), attention transfer (at_method.cpp).
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/optim/optimizer.h>
#include <torch/types.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ganlite/compress/distill_config.h"
#include "ganlite/compress/method_registry.h"
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

  // The run (nullptr in unit tests): its D settings, the D's input channels (6: conditional
  // pix2pix D), and whether it starts fresh (a resumed run takes every weight from its checkpoint).
  const train::TrainConfig* run = nullptr;
  int d_input_nc = 3;
  bool fresh_start = true;
  // The run's GAN mode and Adam settings, for terms with their own networks and optimizers.
  std::string gan_mode = "lsgan";
  double lr = 2e-4, beta1 = 0.5, beta2 = 0.999;
  // DCD: the teacher discriminator, built (and restored) by its method's prepare hook, or the
  // online teacher's D when `online_teacher` (online_teacher.h: trained by the teacher's step).
  nn::Discriminator teacher_discriminator;
  bool online_teacher = false;
};

using TermLosses = std::vector<std::pair<std::string, double>>;
using NamedLosses = std::vector<std::pair<std::string, torch::Tensor>>;

class DistillTerm : public torch::nn::Module {
 public:
  ~DistillTerm() override = default;
  virtual std::string method() const = 0;  // its registered name: logged as G_<name>
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

// Throws Error unless both outputs are given with as many taps each ("<method> distillation: ...").
void check_taps(const DistillInputs& inputs, const std::string& method);

}  // namespace ganlite::compress
