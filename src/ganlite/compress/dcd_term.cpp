#include "ganlite/compress/dcd_term.h"

#include <torch/torch.h>

#include <iostream>
#include <limits>

#include "ganlite/compress/distill_task.h"
#include "ganlite/io/checkpoint.h"
#include "ganlite/io/safetensors.h"
#include "ganlite/nn/init.h"
#include "ganlite/torch_compat.h"
#include "ganlite/train/networks.h"
#include "ganlite/train/task_registry.h"
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

// One conv's output length along an axis (PyTorch's formula); 0 when the input is too short.
int64_t conv_output_length(int64_t n, int64_t kernel, int64_t stride, int64_t padding, int64_t dilation) {
  const int64_t span = n + 2 * padding - dilation * (kernel - 1) - 1;
  return span < 0 ? 0 : span / stride + 1;
}

// Whether an h x w input passes every conv of a single-Sequential D with at least one output
// position, and reaches every InstanceNorm with more than one (it refuses a 1x1 map in training).
// false for a D of another shape (a multi-scale D): the caller then resizes.
bool fits_discriminator(nn::DiscriminatorImpl& d, int64_t h, int64_t w) {
  auto* seq = d.layers().seq;
  if (seq == nullptr) return false;
  for (const auto& child : seq->children()) {
    if (child->as<torch::nn::InstanceNorm2dImpl>() != nullptr && h * w <= 1) return false;
    const auto* conv = child->as<torch::nn::Conv2dImpl>();
    if (conv == nullptr) continue;
    const auto& o = conv->options;
    const auto* pad = compat::variant_get_if<torch::ExpandingArray<2>>(o.padding());
    if (pad == nullptr) return false;
    h = conv_output_length(h, (*o.kernel_size())[0], (*o.stride())[0], (**pad)[0], (*o.dilation())[0]);
    w = conv_output_length(w, (*o.kernel_size())[1], (*o.stride())[1], (**pad)[1], (*o.dilation())[1]);
    if (h < 1 || w < 1) return false;
  }
  return true;
}

// L1 between D' of both sides: each scale's features after its last LeakyReLU (the D cut before
// its last conv), averaged over scales as the GAN loss is (one scale: that scale's L1).
torch::Tensor cut_l1(const nn::DiscriminatorOutput& mine, const nn::DiscriminatorOutput& target) {
  const auto& m = mine.scales;
  const auto& t = target.scales;
  if (m.empty() || m.size() != t.size()) throw Error("dcd distillation: the teacher D returned no or unequal scales");
  torch::Tensor total = torch::l1_loss(m[0].features.back(), t[0].features.back());
  for (size_t i = 1; i < m.size(); ++i) {
    total = total + torch::l1_loss(m[i].features.back(), t[i].features.back());
  }
  return m.size() == 1 ? total : total / static_cast<double>(m.size());
}

}  // namespace

int64_t smallest_fitting_side(nn::DiscriminatorImpl& d) {
  constexpr int64_t kLargest = 4096;
  for (int64_t side = 1; side <= kLargest; ++side) {
    if (fits_discriminator(d, side, side)) return side;
  }
  return 0;
}

std::string dcd_tap_size_help(nn::DiscriminatorImpl& d) {
  const int64_t side = smallest_fitting_side(d);
  if (side == 0) return "a D of several scales: resized always";
  return "it takes " + std::to_string(side) + "x" + std::to_string(side) + " and larger";
}

torch::Tensor vgg_style_loss(const std::vector<torch::Tensor>& mine, const std::vector<torch::Tensor>& target) {
  torch::Tensor total = torch::l1_loss(gram_matrix(mine.at(0)), gram_matrix(target.at(0)));
  for (size_t i = 1; i < kVggStyleLayers; ++i) {
    total = total + torch::l1_loss(gram_matrix(mine.at(i)), gram_matrix(target.at(i)));
  }
  return total;
}

torch::Tensor vgg_feature_loss(const std::vector<torch::Tensor>& mine, const std::vector<torch::Tensor>& target) {
  return torch::l1_loss(mine.at(kVggRelu2_2), target.at(kVggRelu2_2));
}

DcdAdaptersImpl::DcdAdaptersImpl(const std::vector<int64_t>& channels, int64_t out_channels) {
  for (size_t i = 0; i < channels.size(); ++i) {
    adapters.push_back(register_module(std::to_string(i), make_adapter(channels[i], out_channels)));
  }
}

DcdTermImpl::DcdTermImpl(const DistillContext& context, const OptionValues& options)
    : conditional_(train::task_kind(context.task).paired),
      online_(context.online_teacher),
      teacher_d_(context.teacher_discriminator),
      gan_loss_(context.gan_mode),
      // < 0 only when unresolved (unit tests): the paper's 1.
      lambda_gan_(options.number("lambda_dcd_gan") < 0 ? 1.0 : options.number("lambda_dcd_gan")),
      lambda_vgg_feature_(options.number("lambda_vgg_feature")),
      lambda_vgg_style_(options.number("lambda_vgg_style")) {
  if (!teacher_d_) throw Error("dcd distillation needs a teacher discriminator");
  const auto& s = context.student_tap_channels;
  const auto& t = context.teacher_tap_channels;
  if (s.size() != t.size()) {
    throw Error("dcd distillation: the student has " + std::to_string(s.size()) + " taps, the teacher " +
                std::to_string(t.size()));
  }
  const int64_t out = context.d_input_nc;  // the adapters yield what the D takes: 6 for a conditional pix2pix D
  for (size_t i = 0; i < s.size(); ++i) {
    student_adapters.push_back(register_module(std::to_string(i), make_adapter(s[i], out)));
  }
  psi_t_ = DcdAdapters(t, out);
  // DCD-official (distillers/base_cycleganbest_distiller.py, __init__) passes every adapter
  // through networks.init_net (conv N(0, 0.02), BatchNorm gamma N(1, 0.02), beta 0), tap by tap,
  // psi_S then psi_T, and sets psi_T to eval: its BatchNorm normalises with the untouched running
  // statistics (mean 0, var 1) forever.
  for (size_t i = 0; i < s.size(); ++i) {
    nn::init_weights(*student_adapters[i], "normal", 0.02);
    nn::init_weights(*psi_t_->adapters[i], "normal", 0.02);
  }
  psi_t_->eval();
  to(context.device);
  psi_t_->to(context.device);
  train::set_requires_grad(*psi_t_, false);
  teacher_d_->to(context.device);
  train::set_requires_grad(*teacher_d_, false);
  // With an online teacher its own step trains the D, and its student loss holds the VGG terms.
  if (online_) return;
  optimizer_ = std::make_unique<torch::optim::Adam>(
      teacher_d_->parameters(), torch::optim::AdamOptions(context.lr).betas({context.beta1, context.beta2}));

  const std::string& vgg = options.text("vgg_weights");
  if (!vgg.empty()) {
    vgg_ = load_vgg16_features(vgg, context.device);
  } else {
    std::cerr << "dcd: no --vgg-weights given: the VGG16 perceptual terms of the released DCD code "
                 "(relu2_2 feature L1, Gram style over relu1_2..relu4_3) are off\n";
  }
}

torch::Tensor DcdTermImpl::d_input(const DistillInputs& inputs, const torch::Tensor& image) const {
  return conditional_ ? torch::cat({inputs.real_a, image}, 1) : image;
}

torch::Tensor DcdTermImpl::teacher_d_input(const torch::Tensor& adapted, const torch::Tensor& image) {
  const int64_t h = adapted.size(2), w = adapted.size(3);
  if (fits_discriminator(*teacher_d_, h, w)) return adapted;
  if (!resize_noted_) {
    resize_noted_ = true;
    std::cerr << "dcd: the " << h << "x" << w << " taps are too small for the teacher D ("
              << dcd_tap_size_help(*teacher_d_) << "): their adapter outputs are resized to the " << image.size(2) << "x" << image.size(3)
              << " image size before it (the released code feeds them at tap resolution)\n";
  }
  return to_image_size(adapted, image);
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
    nn::DiscriminatorOutput target;
    {
      torch::NoGradGuard no_grad;
      target = teacher_d_->forward(teacher_d_input(psi_t_->adapters[i]->forward(t[i]), in.real_a));
    }
    const auto mine = teacher_d_->forward(teacher_d_input(student_adapters[i]->forward(s[i]), in.real_a));
    total = total + cut_l1(mine, target);
  }
  return total;
}

TermLosses DcdTermImpl::before_generator_step(const DistillInputs& in) {
  if (!in.teacher) throw Error("dcd distillation needs the teacher's output");
  if (online_) return {};
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
    std::vector<torch::Tensor> target;
    {
      torch::NoGradGuard no_grad;
      target = vgg_->forward(in.teacher->image);
    }
    const auto mine = vgg_->forward(in.student->image);
    losses.emplace_back("G_vgg", vgg_feature_loss(mine, target) * lambda_vgg_feature_);
    losses.emplace_back("G_style", vgg_style_loss(mine, target) * lambda_vgg_style_);
  }
  return losses;
}

std::vector<std::pair<std::string, torch::nn::Module*>> DcdTermImpl::extra_modules() {
  if (online_) return {{"A_dcd_teacher", psi_t_.get()}};  // the online teacher checkpoints its D
  return {{"D_teacher", teacher_d_.get()}, {"A_dcd_teacher", psi_t_.get()}};
}

std::vector<std::pair<std::string, torch::optim::Optimizer*>> DcdTermImpl::extra_optimizers() {
  if (online_) return {};
  return {{"D_teacher", optimizer_.get()}};
}

namespace {

// The teacher D (methods.md 3.4): the run's D settings at the teacher width, initialised by the
// run's seed, or restored from --dcd-restore-teacher-d on a fresh start.
void build_teacher_discriminator(DistillContext& context, const OptionValues& o) {
  if (context.online_teacher) return;  // the online teacher's D, set by the distiller
  if (!context.run) throw Error("dcd distillation needs the run's settings to build its teacher D");
  train::TrainConfig teacher_d_config = *context.run;
  const int64_t teacher_ndf = o.integer("teacher_ndf");
  if (teacher_ndf > 0) teacher_d_config.ndf = static_cast<int>(teacher_ndf);
  context.teacher_discriminator = train::build_discriminator(teacher_d_config, context.d_input_nc, context.device);
  const auto& file = o.text("dcd_restore_teacher_d");
  if (!context.fresh_start || file.empty()) return;
  discriminator_file_metadata(file, "--dcd-restore-teacher-d");
  try {
    io::load_module(file, *context.teacher_discriminator, context.device);
  } catch (const Error& e) {
    throw Error(std::string("--dcd-restore-teacher-d: ") + e.what() + " (the teacher D has ndf " +
                std::to_string(teacher_d_config.ndf) +
                " (--teacher-ndf) and follows --netD, --n-layers-D, --norm-D and the task)");
  }
}

// teacher_ndf 0: the --dcd-restore-teacher-d file's width, else the run's --ndf (the teacher
// run's D width).
void adopt_teacher_ndf(OptionValues& o, const train::TrainConfig& run) {
  if (o.integer("teacher_ndf") != 0) return;
  int64_t ndf = run.ndf;
  const auto& file = o.text("dcd_restore_teacher_d");
  if (!file.empty()) {
    const auto meta = io::read_safetensors_header(file).metadata;
    if (meta.count("ndf")) ndf = io::metadata_integer(meta, "ndf", file, 1, train::kMaxNdf);
  }
  o.set_integer("teacher_ndf", ndf);
}

}  // namespace

DistillMethod dcd_distill_method() {
  constexpr double kHuge = std::numeric_limits<double>::max();
  DistillMethod m;
  m.name = kDcdMethod;
  m.description = "teacher D cut before its last conv on adapted taps, a teacher D trained online and its GAN term";
  m.weight_flags = "--lambda-dcd";
  m.weight_help = "Weight of the dcd feature term (default --lambda-distill, else 1)";
  m.default_weight = [](const std::string&) { return 1.0; };
  m.follows_lambda_distill = true;
  m.options = {
      {"teacher_ndf", "--teacher-ndf", OptionType::Integer, int64_t{0}, 0, train::kMaxNdf, {},
       "dcd: width of the teacher D trained online (0: the --dcd-restore-teacher-d file's, else --ndf)", true},
      {"dcd_restore_teacher_d", "--dcd-restore-teacher-d", OptionType::Text, std::string(), 0, 0, {},
       "dcd: start the teacher D from this trained discriminator file instead of from scratch", true},
      {"lambda_dcd_gan", "--lambda-dcd-gan", OptionType::Number, -1.0, -kHuge, kHuge, {},
       "dcd: weight of the student's GAN term against the teacher D (< 0: --lambda-gan)"},
      {"vgg_weights", "--vgg-weights", OptionType::Text, std::string(), 0, 0, {},
       "dcd: torchvision vgg16 state dict (.pth or .safetensors; features.0 to 21 are read) enabling the "
       "released code's perceptual terms (with --online-teacher: the online student's); off without it",
       true, /*online_student=*/true},
      // DCD-official's scripts pass --AGD_weights 1e1,1e4,1e1,1e-5; its distillers read only the
      // first two (cycleganbest_distiller.py, __init__): lambda_style 1e1, lambda_feature 1e4.
      {"lambda_vgg_feature", "--lambda-vgg", OptionType::Number, 1e4, 0, kHuge, {},
       "dcd: weight of the VGG relu2_2 feature L1 (the release's AGD_weights[1])"},
      {"lambda_vgg_style", "--lambda-style", OptionType::Number, 10.0, 0, kHuge, {},
       "dcd: weight of the VGG Gram style L1 summed over relu1_2/2_2/3_3/4_3 (the release's AGD_weights[0])"},
  };
  m.resolve = [](OptionValues& o, const DistillConfig& c) {
    if (o.number("lambda_dcd_gan") < 0) o.set_number("lambda_dcd_gan", c.lambda_gan);
  };
  m.adopt_run_settings = adopt_teacher_ndf;
  m.restored_discriminators = [](const OptionValues& o) {
    std::vector<std::pair<std::string, std::string>> files;
    const auto& file = o.text("dcd_restore_teacher_d");
    if (!file.empty()) files.emplace_back(file, "--dcd-restore-teacher-d");
    return files;
  };
  m.prepare = build_teacher_discriminator;
  m.make_term = [](const DistillContext& context, const OptionValues& o) -> std::shared_ptr<DistillTerm> {
    return DcdTerm(context, o).ptr();
  };
  return m;
}

}  // namespace ganlite::compress
