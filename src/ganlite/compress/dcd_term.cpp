#include "ganlite/compress/dcd_term.h"

#include <torch/torch.h>

#include <iostream>

#include "ganlite/train/networks.h"
#include "ganlite/util/error.h"

namespace ganlite::compress {

namespace {

torch::nn::Sequential make_adapter(int64_t in, int64_t out) {
  return torch::nn::Sequential(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 1).bias(false)),
                               torch::nn::BatchNorm2d(out), torch::nn::ReLU());
}

// Bilinear resize of an adapter output to the image size (a no-op when it already is).
torch::Tensor to_image_size(const torch::Tensor& x, const torch::Tensor& image) {
  if (x.size(2) == image.size(2) && x.size(3) == image.size(3)) return x;
  namespace F = torch::nn::functional;
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .size(std::vector<int64_t>{image.size(2), image.size(3)})
                               .mode(torch::kBilinear)
                               .align_corners(false));
}

}  // namespace

DcdAdaptersImpl::DcdAdaptersImpl(const std::vector<int64_t>& channels, int64_t out_channels) {
  for (size_t i = 0; i < channels.size(); ++i) {
    adapters.push_back(register_module(std::to_string(i), make_adapter(channels[i], out_channels)));
  }
}

DcdTermImpl::DcdTermImpl(const DistillContext& context)
    : conditional_(context.task == "pix2pix"),
      teacher_d_(context.teacher_discriminator),
      gan_loss_(context.gan_mode),
      lambda_gan_(context.config ? context.config->lambda_dcd_gan : 1.0),
      lambda_vgg_feature_(context.config ? context.config->lambda_vgg_feature : 1.0),
      lambda_vgg_style_(context.config ? context.config->lambda_vgg_style : 1.0) {
  if (!teacher_d_) throw Error("dcd distillation needs a teacher discriminator");
  const auto& s = context.student_tap_channels;
  const auto& t = context.teacher_tap_channels;
  if (s.size() != t.size()) {
    throw Error("dcd distillation: the student has " + std::to_string(s.size()) + " taps, the teacher " +
                std::to_string(t.size()));
  }
  const int64_t out = conditional_ ? 6 : 3;
  for (size_t i = 0; i < s.size(); ++i) {
    student_adapters.push_back(register_module(std::to_string(i), make_adapter(s[i], out)));
  }
  psi_t_ = DcdAdapters(t, out);
  to(context.device);
  psi_t_->to(context.device);
  train::set_requires_grad(*psi_t_, false);
  teacher_d_->to(context.device);
  train::set_requires_grad(*teacher_d_, false);
  optimizer_ = std::make_unique<torch::optim::Adam>(
      teacher_d_->parameters(), torch::optim::AdamOptions(context.lr).betas({context.beta1, context.beta2}));

  const std::string vgg = context.config ? context.config->vgg_weights : "";
  if (!vgg.empty()) {
    vgg_ = load_vgg16_features(vgg, context.device);
  } else {
    std::cerr << "dcd: no --vgg-weights given: the VGG16 perceptual terms of the released DCD code "
                 "(relu2_2 feature L1, Gram style) are off\n";
  }
}

torch::Tensor DcdTermImpl::d_input(const DistillInputs& inputs, const torch::Tensor& image) const {
  return conditional_ ? torch::cat({inputs.real_a, image}, 1) : image;
}

torch::Tensor DcdTermImpl::loss(const DistillInputs& in) {
  if (!in.student || !in.teacher) throw Error("dcd distillation needs student and teacher outputs");
  const auto& s = in.student->taps;
  const auto& t = in.teacher->taps;
  if (s.size() != student_adapters.size() || t.size() != psi_t_->adapters.size()) {
    throw Error("dcd distillation: " + std::to_string(student_adapters.size()) + " adapters for " +
                std::to_string(s.size()) + " student taps and " + std::to_string(t.size()) + " teacher taps");
  }
  torch::Tensor total = torch::zeros({}, in.real_a.options());
  for (size_t i = 0; i < s.size(); ++i) {
    torch::Tensor target;
    {
      torch::NoGradGuard no_grad;
      target = teacher_d_->forward_cut(to_image_size(psi_t_->adapters[i]->forward(t[i]), in.real_a));
    }
    const auto mine = teacher_d_->forward_cut(to_image_size(student_adapters[i]->forward(s[i]), in.real_a));
    total = total + torch::l1_loss(mine, target);
  }
  return total;
}

TermLosses DcdTermImpl::before_generator_step(const DistillInputs& in) {
  if (!in.teacher) throw Error("dcd distillation needs the teacher's output");
  train::set_requires_grad(*teacher_d_, true);
  optimizer_->zero_grad();
  const auto fake = gan_loss_(teacher_d_->forward(d_input(in, in.teacher->image.detach())), false, true);
  const auto real = gan_loss_(teacher_d_->forward(d_input(in, in.real_b)), true, true);
  ((fake + real) * 0.5).backward();
  optimizer_->step();
  train::set_requires_grad(*teacher_d_, false);
  return {{"D_teacher_real", real.item<double>()}, {"D_teacher_fake", fake.item<double>()}};
}

NamedLosses DcdTermImpl::extra_generator_losses(const DistillInputs& in) {
  NamedLosses losses;
  losses.emplace_back("G_dcd_gan",
                      gan_loss_(teacher_d_->forward(d_input(in, in.student->image)), true, false) * lambda_gan_);
  if (has_vgg()) {
    torch::Tensor target;
    {
      torch::NoGradGuard no_grad;
      target = vgg_->forward(in.teacher->image);
    }
    const auto mine = vgg_->forward(in.student->image);
    losses.emplace_back("G_vgg", torch::l1_loss(mine, target) * lambda_vgg_feature_);
    losses.emplace_back("G_style", torch::mse_loss(gram_matrix(mine), gram_matrix(target)) * lambda_vgg_style_);
  }
  return losses;
}

std::vector<std::pair<std::string, torch::nn::Module*>> DcdTermImpl::extra_modules() {
  return {{"D_teacher", teacher_d_.get()}, {"A_dcd_teacher", psi_t_.get()}};
}

std::vector<std::pair<std::string, torch::optim::Optimizer*>> DcdTermImpl::extra_optimizers() {
  return {{"D_teacher", optimizer_.get()}};
}

}  // namespace ganlite::compress
