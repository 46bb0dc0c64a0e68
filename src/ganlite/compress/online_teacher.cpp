#include "ganlite/compress/online_teacher.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "ganlite/compress/dcd_term.h"
#include "ganlite/nn/arch_config.h"
#include "ganlite/nn/generator_family.h"
#include "ganlite/train/networks.h"
#include "ganlite/train/task_registry.h"
#include "ganlite/util/error.h"

namespace ganlite::compress {

namespace {

constexpr const char* kTeacherPrefix = "T_";

// The entry at `index` of a task's export list (its direction order), Error when absent.
template <typename List>
auto pick(const List& list, size_t index, const std::string& what) {
  if (index >= list.size()) throw Error("online teacher: the task exports no " + what);
  return list[index].second;
}

train::Losses prefixed(const train::Losses& losses) {
  train::Losses out;
  for (const auto& [name, value] : losses) out.emplace_back(kTeacherPrefix + name, value);
  return out;
}

const std::string& option_text(const DistillConfig& d, const char* key) {
  return std::get<std::string>(d.option(key));
}

double option_number(const DistillConfig& d, const char* key) { return std::get<double>(d.option(key)); }

// The release's window (pytorch_ssim.create_window): exp(-(x - 5)^2 / (2 sigma^2)) in double,
// rounded to the images' type, normalised there, outer product.
torch::Tensor ssim_window(int64_t channels, const torch::TensorOptions& options) {
  constexpr int64_t kSize = 11;
  constexpr double kSigma = 1.5;
  std::vector<double> g(kSize);
  for (int64_t x = 0; x < kSize; ++x) g[x] = std::exp(-static_cast<double>((x - kSize / 2) * (x - kSize / 2)) / (2 * kSigma * kSigma));
  auto gauss = torch::tensor(g, torch::kFloat64).to(options.dtype());
  gauss = gauss / gauss.sum();
  const auto window = gauss.unsqueeze(1).mm(gauss.unsqueeze(0));
  return window.expand({channels, 1, kSize, kSize}).contiguous().to(options.device());
}

}  // namespace

OnlineTeacherSpec parse_online_teacher(const std::string& spec) {
  const auto colon = spec.find(':');
  const std::string usage = "--online-teacher '" + spec + "': expected ARCH:NGF, e.g. mobile_resnet:64 (ARCH one of " +
                            [] {
                              std::string s;
                              for (const auto& n : nn::generator_family_names()) s += (s.empty() ? "" : ", ") + n;
                              return s;
                            }() +
                            ")";
  if (colon == std::string::npos) throw UsageError(usage);
  OnlineTeacherSpec out;
  out.arch = spec.substr(0, colon);
  const std::string ngf = spec.substr(colon + 1);
  if (!nn::find_generator_family(out.arch)) throw UsageError(usage);
  size_t used = 0;
  long long value = 0;
  try {
    value = std::stoll(ngf, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (ngf.empty() || used != ngf.size() || value < 1 || value > nn::kMaxNgf) {
    throw UsageError(usage + "; NGF must be an integer in [1, " + std::to_string(nn::kMaxNgf) + "]");
  }
  out.ngf = static_cast<int>(value);
  return out;
}

int default_n_dis(const std::string& task) { return train::task_kind(task).paired ? 1 : 4; }

train::TrainConfig online_teacher_config(const train::TrainConfig& run, const DistillConfig& distill) {
  const auto spec = parse_online_teacher(distill.online_teacher);
  train::TrainConfig t = run;
  t.generator = train::generator_with_auto_norm();
  t.generator.arch = spec.arch;
  t.generator.ngf = spec.ngf;
  const int64_t teacher_ndf = std::get<int64_t>(distill.option("teacher_ndf"));
  if (teacher_ndf > 0) t.ndf = static_cast<int>(teacher_ndf);
  t = t.resolved();
  t.validate_config();
  return t;
}

torch::Tensor release_ssim(const torch::Tensor& x, const torch::Tensor& y) {
  namespace F = torch::nn::functional;
  const int64_t c = x.size(1);
  const auto window = ssim_window(c, x.options());
  auto blur = [&](const torch::Tensor& t) {
    return F::conv2d(t, window, F::Conv2dFuncOptions().padding(5).groups(c));
  };
  const auto mu1 = blur(x), mu2 = blur(y);
  const auto mu1_sq = mu1.pow(2), mu2_sq = mu2.pow(2), mu1_mu2 = mu1 * mu2;
  const auto sigma1_sq = blur(x * x) - mu1_sq;
  const auto sigma2_sq = blur(y * y) - mu2_sq;
  const auto sigma12 = blur(x * y) - mu1_mu2;
  constexpr double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03;
  const auto map = ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / ((mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2));
  return map.mean();
}

torch::Tensor total_variation(const torch::Tensor& x) {
  using torch::indexing::Slice;
  const auto dj = (x.index({"...", Slice(1, torch::indexing::None)}) - x.index({"...", Slice(torch::indexing::None, -1)}));
  const auto di = (x.index({"...", Slice(1, torch::indexing::None), Slice()}) -
                   x.index({"...", Slice(torch::indexing::None, -1), Slice()}));
  return dj.abs().sum() + di.abs().sum();
}

OnlineTeacher::OnlineTeacher(const train::TrainConfig& run, const DistillConfig& distill, const torch::Device& device)
    : config_(online_teacher_config(run, distill)),
      device_(device),
      paired_(train::task_kind(run.task).paired),
      n_dis_(distill.n_dis > 0 ? distill.n_dis : default_n_dis(run.task)),
      gan_loss_(config_.gan_mode),
      state_(std::make_shared<torch::nn::Module>()),
      lambda_vgg_feature_(option_number(distill, "lambda_vgg_feature")),
      lambda_vgg_style_(option_number(distill, "lambda_vgg_style")),
      lambda_ssim_(distill.lambda_ssim),
      lambda_tv_(distill.lambda_tv) {
  state_->register_buffer("steps", torch::zeros({}, torch::kInt64));
  state_->register_buffer("best_psnr", torch::full({}, -1.0, torch::kFloat64));
  const auto adam = torch::optim::AdamOptions(config_.lr).betas({config_.beta1, config_.beta2});
  if (paired_) {
    // The release's pix2pix teacher: a G and a conditional D of the run's D settings.
    generator_ = train::build_generator(config_, config_.generator.input_nc, config_.generator.output_nc, device_);
    discriminator_ = train::build_discriminator(config_, 6, device_);
    optimizer_g_ = std::make_unique<torch::optim::Adam>(generator_->parameters(), adam);
    optimizer_d_ = std::make_unique<torch::optim::Adam>(discriminator_->parameters(), adam);
  } else {
    // The registered unpaired task trains both directions; the distilled direction's G and the
    // D judging its outputs (D_A for A -> B) are the teacher.
    unpaired_task_ = train::task_kind(run.task).make_task(config_, device_);
    const size_t side = run.direction == "BtoA" ? 1 : 0;
    generator_ = pick(unpaired_task_->export_generators(), side, "generator for direction " + run.direction);
    auto* d = pick(unpaired_task_->export_discriminators(), side, "discriminator for direction " + run.direction);
    discriminator_ = std::dynamic_pointer_cast<nn::DiscriminatorImpl>(d->shared_from_this());
    if (!discriminator_) throw Error("online teacher: the task's discriminator is not a ganlite discriminator");
  }
  generator_->train();
  train::set_requires_grad(*discriminator_, false);  // only its own step gives it gradients

  const std::string& vgg = option_text(distill, "vgg_weights");
  if (!vgg.empty()) vgg_ = load_vgg16_features(vgg, device_);
}

nn::GeneratorOutput OnlineTeacher::forward(const torch::Tensor& real_a) {
  if (paired_) return generator_->forward_with_taps(real_a);
  torch::NoGradGuard no_grad;  // the unpaired task's own step runs its forward again
  return generator_->forward_with_taps(real_a);
}

bool OnlineTeacher::due() const { return (steps_done() + 1) % n_dis_ == 0; }

int64_t OnlineTeacher::steps_done() const { return state_->named_buffers()["steps"].item<int64_t>(); }

train::Losses OnlineTeacher::step(const data::Batch& batch, const torch::Tensor& real_a, const torch::Tensor& real_b,
                                  const nn::GeneratorOutput& teacher_out) {
  const bool train_now = due();
  {
    torch::NoGradGuard no_grad;
    state_->named_buffers()["steps"].add_(1);
  }
  if (!train_now) return {};
  train::Losses losses;
  if (paired_) {
    losses = paired_step(real_a, real_b, teacher_out);
  } else {
    losses = prefixed(unpaired_task_->train_step(batch));
  }
  train::set_requires_grad(*discriminator_, false);
  return losses;
}

// DCD-official Pix2PixBestDistiller.optimize_parameters: backward_D_teacher, then
// backward_G_teacher with D frozen (its GAN term through D before D steps), then both step.
train::Losses OnlineTeacher::paired_step(const torch::Tensor& real_a, const torch::Tensor& real_b,
                                         const nn::GeneratorOutput& out) {
  optimizer_d_->zero_grad();
  optimizer_g_->zero_grad();
  const auto fake_ab = torch::cat({real_a, out.image}, 1);
  train::set_requires_grad(*discriminator_, true);
  const auto loss_d_fake = gan_loss_(discriminator_->forward(fake_ab.detach()), false, true);
  const auto loss_d_real = gan_loss_(discriminator_->forward(torch::cat({real_a, real_b}, 1)), true, true);
  ((loss_d_fake + loss_d_real) * 0.5).backward();
  train::set_requires_grad(*discriminator_, false);
  const auto loss_g_gan = gan_loss_(discriminator_->forward(fake_ab), true, false);
  const auto loss_g_l1 = torch::l1_loss(out.image, real_b) * config_.lambda_L1;
  (loss_g_gan + loss_g_l1).backward();
  optimizer_d_->step();
  optimizer_g_->step();
  return {{"T_G_GAN", loss_g_gan.item<double>()},
          {"T_G_L1", loss_g_l1.item<double>()},
          {"T_D_real", loss_d_real.item<double>()},
          {"T_D_fake", loss_d_fake.item<double>()}};
}

NamedLosses OnlineTeacher::student_losses(const torch::Tensor& student_image, const torch::Tensor& teacher_image) {
  NamedLosses losses;
  const auto target = teacher_image.detach();
  if (has_vgg()) {
    std::vector<torch::Tensor> t;
    {
      torch::NoGradGuard no_grad;
      t = vgg_->forward(target);
    }
    const auto s = vgg_->forward(student_image);
    losses.emplace_back("G_vgg", vgg_feature_loss(s, t) * lambda_vgg_feature_);
    losses.emplace_back("G_style", vgg_style_loss(s, t) * lambda_vgg_style_);
  }
  if (lambda_ssim_ > 0) losses.emplace_back("G_ssim", (1 - release_ssim(student_image, target)) * lambda_ssim_);
  if (lambda_tv_ > 0) losses.emplace_back("G_tv", total_variation(student_image) * lambda_tv_);
  return losses;
}

std::vector<std::pair<std::string, torch::nn::Module*>> OnlineTeacher::modules() {
  std::vector<std::pair<std::string, torch::nn::Module*>> m{{"T_state", state_.get()}};
  if (paired_) {
    m.emplace_back("T_G", generator_.get());
    m.emplace_back("T_D", discriminator_.get());
  } else {
    for (const auto& [name, module] : unpaired_task_->modules()) m.emplace_back(kTeacherPrefix + name, module);
  }
  return m;
}

std::vector<std::pair<std::string, torch::optim::Optimizer*>> OnlineTeacher::optimizers() {
  if (paired_) return {{"T_G", optimizer_g_.get()}, {"T_D", optimizer_d_.get()}};
  std::vector<std::pair<std::string, torch::optim::Optimizer*>> o;
  for (const auto& [name, optimizer] : unpaired_task_->optimizers()) o.emplace_back(kTeacherPrefix + name, optimizer);
  return o;
}

void OnlineTeacher::save_extra_state(train::NamedTensors& tensors, train::Metadata& metadata) const {
  if (unpaired_task_) unpaired_task_->save_extra_state(tensors, metadata);
}

void OnlineTeacher::load_extra_state(const train::NamedTensors& tensors, const train::Metadata& metadata) {
  if (unpaired_task_) unpaired_task_->load_extra_state(tensors, metadata);
}

bool OnlineTeacher::record_validation(double psnr) {
  auto best = state_->named_buffers()["best_psnr"];
  if (!(psnr > best.item<double>())) return false;
  torch::NoGradGuard no_grad;
  best.fill_(psnr);
  return true;
}

}  // namespace ganlite::compress
