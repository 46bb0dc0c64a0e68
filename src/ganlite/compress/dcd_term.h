// DCD: discriminator-cooperated distillation (methods.md 3.4).
//
// Per tap i (the four distillation layers of forward_with_taps) an adapter psi maps the feature
// map to an image-like tensor: 1x1 conv (no bias) -> BatchNorm -> ReLU, to 3 channels, or 6 for
// the conditional pix2pix D (methods.md: the adapter itself yields the 6 channels). Both sides go
// through the teacher D cut before its last conv (the last features of each scale of its output):
//   L_dcd = sum_i mean |D'(up(psi_S(S_i))) - D'(up(psi_T(T_i)))|,   teacher side without gradient.
// D' is averaged over the D's scales as the GAN loss is (PatchGAN has one). up() resizes the
// adapter output bilinearly to the training image size: the teacher D was trained on images, and
// a PatchGAN cannot take the 4x smaller tap resolution at small crops (our choice; the paper
// does not say).
//
// Who trains what:
//  - psi_S: the student's optimizer (this module's own parameters, checkpointed as A_dcd).
//  - psi_T: nothing (methods.md: teacher side without gradient): it keeps its seeded init, its
//    BatchNorm normalising with batch statistics; checkpointed as A_dcd_teacher (running stats).
//  - the teacher D: trained from scratch online (or from --dcd-restore-teacher-d) by its own Adam
//    on its own GAN loss, real B vs the teacher's T(A), 0.5 * (real + fake), in
//    before_generator_step; checkpointed as D_teacher / opt_D_teacher. Its weights never get
//    gradients from the student's losses (requires_grad is off outside its own step).
//  - the student also gets lambda_dcd_gan * GAN(D_teacher(S(A)), real) (collaborative
//    adversarial training, as the paper says; the released code's term never reached the student).
// With --vgg-weights the released code's perceptual terms are added, between S(A) and T(A):
// L1 of VGG16 relu2_2 features (lambda_vgg_feature) and MSE of their Gram matrices
// (lambda_vgg_style). Without it they are off and the constructor says so once on stderr.
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

  bool conditional_;
  nn::Discriminator teacher_d_;
  DcdAdapters psi_t_{nullptr};
  std::unique_ptr<torch::optim::Adam> optimizer_;
  train::GanLoss gan_loss_;
  double lambda_gan_;
  double lambda_vgg_feature_;
  double lambda_vgg_style_;
  Vgg16Features vgg_{nullptr};
};
TORCH_MODULE(DcdTerm);

}  // namespace ganlite::compress
