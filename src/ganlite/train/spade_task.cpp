#include "ganlite/train/spade_task.h"

#include <torch/torch.h>

#include <filesystem>
#include <iostream>

#include "ganlite/train/mixed_precision.h"
#include "ganlite/train/task_registry.h"
#include "ganlite/util/error.h"
#include "ganlite/util/progress.h"

namespace ganlite::train {

namespace fs = std::filesystem;

namespace {

// SPADE's create_optimizers: TTUR halves G's lr, doubles D's, and uses betas (0, 0.9).
constexpr double kTturBeta1 = 0.0;
constexpr double kTturBeta2 = 0.9;

nn::DiscriminatorOutput batch_half(const nn::DiscriminatorOutput& both, int64_t begin, int64_t n) {
  nn::DiscriminatorOutput out;
  for (const auto& scale : both.scales) {
    nn::DiscriminatorScale s;
    s.logits = scale.logits.narrow(0, begin, n);
    for (const auto& f : scale.features) s.features.push_back(f.narrow(0, begin, n));
    out.scales.push_back(std::move(s));
  }
  return out;
}

int label_channels(const TrainConfig& c) { return c.generator.label_nc + 1; }

}  // namespace

torch::Tensor feature_matching_loss(const nn::DiscriminatorOutput& fake, const nn::DiscriminatorOutput& real) {
  require(!fake.scales.empty() && fake.scales.size() == real.scales.size(),
          "feature matching needs the same scales for fake and real");
  const double num_d = static_cast<double>(fake.scales.size());
  torch::Tensor loss;
  for (size_t i = 0; i < fake.scales.size(); ++i) {
    const auto& f = fake.scales[i].features;
    const auto& r = real.scales[i].features;
    require(f.size() == r.size(), "feature matching needs the same features for fake and real");
    for (size_t j = 0; j < f.size(); ++j) {
      const auto term = torch::l1_loss(f[j], r[j].detach()) / num_d;
      loss = loss.defined() ? loss + term : term;
    }
  }
  return loss.defined() ? loss : torch::zeros({}, fake.scales.front().logits.options());
}

FakeAndReal discriminate(nn::DiscriminatorImpl& d, const torch::Tensor& semantics, const torch::Tensor& fake,
                         const torch::Tensor& real) {
  const auto fake_concat = torch::cat({semantics, fake}, 1);
  const auto real_concat = torch::cat({semantics, real}, 1);
  const auto both = d.forward(torch::cat({fake_concat, real_concat}, 0));
  const int64_t n = fake.size(0);
  return {batch_half(both, 0, n), batch_half(both, n, n)};
}

torch::Tensor SpadeGeneratorLosses::total() const {
  torch::Tensor t = gan;
  if (feat.defined()) t = t + feat;
  if (vgg.defined()) t = t + vgg;
  return t;
}

SpadeObjective::SpadeObjective(const TrainConfig& config, const torch::Device& device)
    : config_(config), gan_loss_(config.gan_mode) {
  if (config_.lambda_vgg > 0 && !config_.vgg_weights.empty()) {
    vgg_.emplace(config_.vgg_weights, device);
  } else if (config_.lambda_vgg > 0 && ProgressBar::enabled()) {
    std::cerr << "VGG19 perceptual loss off: no --vgg-weights given (a torchvision vgg19 state dict, e.g. "
                 "vgg19-dcbb9e9d.pth; SPADE weighs it x" << config_.lambda_vgg << ")\n";
  }
}

SpadeGeneratorLosses SpadeObjective::generator_losses(nn::DiscriminatorImpl& d, const torch::Tensor& semantics,
                                                      const torch::Tensor& fake, const torch::Tensor& real) {
  const auto judged = discriminate(d, semantics, fake, real);
  SpadeGeneratorLosses losses;
  losses.gan = gan_loss_(judged.fake, true, false);
  if (config_.lambda_feat > 0) losses.feat = feature_matching_loss(judged.fake, judged.real) * config_.lambda_feat;
  if (vgg_) losses.vgg = (*vgg_)(fake, real) * config_.lambda_vgg;
  return losses;
}

std::pair<torch::Tensor, torch::Tensor> SpadeObjective::discriminator_losses(nn::DiscriminatorImpl& d,
                                                                             const torch::Tensor& semantics,
                                                                             const torch::Tensor& fake,
                                                                             const torch::Tensor& real) {
  const auto judged = discriminate(d, semantics, fake.detach(), real);
  return {gan_loss_(judged.real, true, true), gan_loss_(judged.fake, false, true)};
}

data::LabelMapOptions label_map_options(const TrainConfig& c, const data::DatasetOptions& options) {
  data::LabelMapOptions m;
  m.label_nc = c.generator.label_nc;
  m.preprocess = c.preprocess == "fixed" || c.preprocess == "none" ? c.preprocess : options.transform.preprocess;
  m.load_size = options.transform.load_size;
  m.crop_size = options.transform.crop_size;
  m.aspect_ratio = c.aspect_ratio;
  m.flip = options.transform.flip;
  m.use_instances = !c.no_instance;
  return m;
}

SpadeTask::SpadeTask(const TrainConfig& config, const torch::Device& device)
    : config_(config.resolved()), device_(device), objective_(config_, device) {
  config_.validate_config();
  require_fp32_precision(config_.precision, "--task spade");
  generator_ = build_generator(config_, label_channels(config_), 3, device_);
  discriminator_ = build_discriminator(config_, discriminator_input_nc(config_), device_);
  const bool ttur = !config_.no_ttur;
  const double beta1 = ttur ? kTturBeta1 : config_.beta1, beta2 = ttur ? kTturBeta2 : config_.beta2;
  optimizer_g_ = std::make_unique<torch::optim::Adam>(
      generator_->parameters(), torch::optim::AdamOptions(config_.lr * lr_factor("G")).betas({beta1, beta2}));
  optimizer_d_ = std::make_unique<torch::optim::Adam>(
      discriminator_->parameters(), torch::optim::AdamOptions(config_.lr * lr_factor("D")).betas({beta1, beta2}));
}

double SpadeTask::lr_factor(const std::string& optimizer) const {
  if (config_.no_ttur) return 1.0;
  return optimizer == "D" ? 2.0 : 0.5;
}

Losses SpadeTask::train_step(const data::Batch& batch) {
  const auto semantics = batch.a.to(device_);
  const auto real = batch.b.to(device_);

  // G first, then D on a fake drawn again without gradient (SPADE's run_generator_one_step, then
  // run_discriminator_one_step).
  set_requires_grad(*discriminator_, false);
  optimizer_g_->zero_grad();
  const auto g = objective_.generator_losses(*discriminator_, semantics, generator_->forward(semantics), real);
  g.total().backward();
  optimizer_g_->step();
  set_requires_grad(*discriminator_, true);

  torch::Tensor fake;
  {
    torch::NoGradGuard no_grad;
    fake = generator_->forward(semantics);
  }
  optimizer_d_->zero_grad();
  const auto [d_real, d_fake] = objective_.discriminator_losses(*discriminator_, semantics, fake, real);
  (d_real + d_fake).backward();
  optimizer_d_->step();

  Losses losses{{"G_GAN", g.gan.item<double>()}};
  if (g.feat.defined()) losses.emplace_back("G_feat", g.feat.item<double>());
  if (g.vgg.defined()) losses.emplace_back("G_VGG", g.vgg.item<double>());
  losses.emplace_back("D_real", d_real.item<double>());
  losses.emplace_back("D_fake", d_fake.item<double>());
  return losses;
}

std::vector<std::pair<std::string, torch::nn::Module*>> SpadeTask::modules() {
  return {{"G", generator_.get()}, {"D", discriminator_.get()}};
}

std::vector<std::pair<std::string, torch::optim::Optimizer*>> SpadeTask::optimizers() {
  return {{"G", optimizer_g_.get()}, {"D", optimizer_d_.get()}};
}

Metadata SpadeTask::discriminator_metadata() const {
  return discriminator_metadata_for(config_, discriminator_input_nc(config_));
}

TaskKind spade_train_task() {
  TaskKind k;
  k.name = kSpadeTask;
  k.description = "semantic image synthesis (GauGAN): label maps -> images (cityscapes gtFine/ + leftImg8bit/, or "
                  "<split>_labels/ + <split>_img/ [+ <split>_inst/]), hinge + feature matching + VGG19, TTUR";
  k.paired = true;
  k.label_maps = true;
  k.default_ndf = 64;
  k.default_gan_mode = "hinge";
  k.default_net_d = "multiscale";
  k.scaled_norm = "batch";
  k.generator_input_nc = [](const TrainConfig& c) { return label_channels(c); };
  k.discriminator_input_nc = [](const TrainConfig& c) { return label_channels(c) + 3; };
  k.preview_input = [](const torch::Tensor& input) { return data::colorize_semantic_input(input); };
  k.open_train_set = [](const TrainConfig& c, const data::DatasetOptions& options) {
    return data::open_label_maps(c.dataroot, "train", label_map_options(c, options));
  };
  k.open_validation_set = [](const TrainConfig& c, const data::DatasetOptions& options,
                             std::string* why) -> std::optional<ValidationSet> {
    const fs::path root = c.dataroot;
    std::string split;
    if (data::is_cityscapes_layout(root)) {
      if (fs::is_directory(root / "gtFine" / "val")) split = "test";  // read as val/, as SPADE
    } else if (fs::is_directory(root / "test_labels")) {
      split = "test";
    } else if (fs::is_directory(root / "val_labels")) {
      split = "val";
    }
    if (split.empty()) {
      if (why) *why = "no test split (" + (root / "test_labels").string() + ", val_labels/ or gtFine/val/)";
      return std::nullopt;
    }
    return ValidationSet{data::open_label_maps(root, split, label_map_options(c, options)), nullptr, split + " images"};
  };
  k.open_train_targets = [](const TrainConfig& c, const data::DatasetOptions& options) {
    return TargetImages{data::open_label_maps(c.dataroot, "train", label_map_options(c, options)), true};
  };
  k.make_task = [](const TrainConfig& c, const torch::Device& device) -> std::unique_ptr<TrainTask> {
    return std::make_unique<SpadeTask>(c, device);
  };
  return k;
}

}  // namespace ganlite::train
