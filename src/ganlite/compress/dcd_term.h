// DCD: discriminator-cooperated distillation (methods.md 3.4; docs/fidelity.md, "DCD").
//
// Per tap i (the four distillation layers of forward_with_taps) an adapter psi maps the feature
// map to an image-like tensor: 1x1 conv (no bias) -> BatchNorm -> ReLU, to 3 channels, or 6 for
// the conditional pix2pix D (methods.md: the adapter itself yields the 6 channels). Both sides go
// through the teacher D cut before its last conv (the last features of each scale of its output):
//   L_dcd = sum_i mean |D'(psi_S(S_i)) - D'(psi_T(T_i))|,   teacher side without gradient.
// D' is averaged over the D's scales as the GAN loss is (PatchGAN has one). The adapter outputs
// enter D at tap resolution, as DCD-official does (cycleganbest_distiller.py, calc_DCD_loss).
// Fallback: a tap too small for the D (a 3-layer PatchGAN needs 24x24: 32x32 crops give 8x8
// taps) is resized bilinearly to the image size first, said once on stderr.
//
// Who trains what:
//  - psi_S: the student's optimizer (this module's own parameters, checkpointed as A_dcd).
//  - psi_T: nothing. As the release's CycleGAN distiller: init_net's N(0, 0.02) init and eval
//    mode, so its BatchNorm uses the running statistics it was built with (mean 0, var 1) and
//    never updates them; checkpointed as A_dcd_teacher.
//  - the teacher D: trained from scratch online (or from --dcd-restore-teacher-d) by its own Adam
//    on its own GAN loss, real B vs the teacher's T(A), 0.5 * (real + fake), in
//    before_generator_step; checkpointed as D_teacher / opt_D_teacher. Its weights never get
//    gradients from the student's losses (requires_grad is off outside its own step).
//  - the student also gets lambda_dcd_gan * GAN(D_teacher(S(A)), real) (collaborative
//    adversarial training, as the paper says; the released code's term never reached the student).
// With --vgg-weights the released code's perceptual terms are added, between S(A) and T(A), on
// VGG16 of (x + 1) / 2: lambda_vgg_feature (1e4) x L1 of relu2_2 features and lambda_vgg_style
// (10) x the sum over relu1_2, relu2_2, relu3_3, relu4_3 of the L1 of their Gram matrices. Without
// it they are off and the constructor says so once on stderr.
// With an online teacher (online_teacher.h) the teacher D is the online teacher's, trained by its
// step; the term then neither steps it nor checkpoints it, and the VGG terms are the online
// student's (added once, there).
// The method's options (teacher_ndf, dcd_restore_teacher_d, lambda_dcd_gan, vgg_weights,
// lambda_vgg_feature, lambda_vgg_style) and its teacher D's construction are in dcd_term.cpp.
#pragma once
#include <torch/nn/modules/container/sequential.h>
#include <torch/optim/adam.h>

#include <memory>
#include <string>
#include <vector>

#include "ganlite/compress/distill_loss.h"
#include "ganlite/compress/vgg16.h"
#include "ganlite/train/gan_loss.h"

namespace ganlite::compress {

inline constexpr const char* kDcdMethod = "dcd";

// The smallest square input side every conv of the D maps to at least one position (0 for a D of
// several scales), and that fact in words for messages.
int64_t smallest_fitting_side(nn::DiscriminatorImpl& d);
std::string dcd_tap_size_help(nn::DiscriminatorImpl& d);

// The release's perceptual terms on Vgg16Features' outputs (unweighted): sum over the four
// layers of L1(Gram(mine), Gram(target)); L1 of the relu2_2 features.
torch::Tensor vgg_style_loss(const std::vector<torch::Tensor>& mine, const std::vector<torch::Tensor>& target);
torch::Tensor vgg_feature_loss(const std::vector<torch::Tensor>& mine, const std::vector<torch::Tensor>& target);

// A list of adapters registered as "0", "1", ... (one per tap), each Sequential [conv, bn, relu].
class DcdAdaptersImpl : public torch::nn::Module {
 public:
  DcdAdaptersImpl(const std::vector<int64_t>& channels, int64_t out_channels);
  std::vector<torch::nn::Sequential> adapters;
};
TORCH_MODULE(DcdAdapters);

class DcdTermImpl : public DistillTerm {
 public:
  // Needs context.teacher_discriminator; builds psi_S (registered here) and psi_T on
  // context.device and the teacher D's Adam; loads VGG16 when the vgg_weights option is set.
  DcdTermImpl(const DistillContext& context, const OptionValues& options);

  std::string method() const override { return kDcdMethod; }
  torch::Tensor loss(const DistillInputs& inputs) override;
  // "D_teacher" (the teacher D) and "A_dcd_teacher" (psi_T).
  std::vector<std::pair<std::string, torch::nn::Module*>> extra_modules() override;
  std::vector<std::pair<std::string, torch::optim::Optimizer*>> extra_optimizers() override;
  // The teacher D step; logs D_teacher_real, D_teacher_fake.
  TermLosses before_generator_step(const DistillInputs& inputs) override;
  // G_dcd_gan, and with VGG weights G_vgg and G_style.
  NamedLosses extra_generator_losses(const DistillInputs& inputs) override;

  nn::Discriminator teacher_discriminator() const { return teacher_d_; }
  DcdAdapters teacher_adapters() const { return psi_t_; }
  torch::optim::Adam& teacher_optimizer() { return *optimizer_; }
  bool has_vgg() const { return !vgg_.is_empty(); }

  std::vector<torch::nn::Sequential> student_adapters;  // registered as "0", "1", ...

 private:
  torch::Tensor d_input(const DistillInputs& inputs, const torch::Tensor& image) const;
  // An adapter output as the teacher D takes it: itself, or resized to `image`'s size when too
  // small for the D.
  torch::Tensor teacher_d_input(const torch::Tensor& adapted, const torch::Tensor& image);

  bool conditional_;
  bool online_;  // the D belongs to an online teacher (online_teacher.h): no step, no VGG terms here
  nn::Discriminator teacher_d_;
  DcdAdapters psi_t_{nullptr};
  std::unique_ptr<torch::optim::Adam> optimizer_;
  train::GanLoss gan_loss_;
  double lambda_gan_;
  double lambda_vgg_feature_;
  double lambda_vgg_style_;
  Vgg16Features vgg_{nullptr};
  bool resize_noted_ = false;
};
TORCH_MODULE(DcdTerm);

}  // namespace ganlite::compress
