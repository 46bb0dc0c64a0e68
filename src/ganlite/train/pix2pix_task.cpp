#include "ganlite/train/pix2pix_task.h"

#include <torch/torch.h>

#include <filesystem>

#include "ganlite/train/task_registry.h"

namespace ganlite::train {

Pix2PixTask::Pix2PixTask(const TrainConfig& config, const torch::Device& device)
    : config_(config.resolved()), device_(device), precision_(config_.precision, device_), gan_loss_(config_.gan_mode) {
  generator_ = build_generator(config_, 3, 3, device_);
  discriminator_ = build_discriminator(config_, 6, device_);
  const auto adam = torch::optim::AdamOptions(config_.lr).betas({config_.beta1, config_.beta2});
  optimizer_g_ = std::make_unique<torch::optim::Adam>(generator_->parameters(), adam);
  optimizer_d_ = std::make_unique<torch::optim::Adam>(discriminator_->parameters(), adam);
}

Losses Pix2PixTask::train_step(const data::Batch& batch) {
  const auto real_a = batch.a.to(device_);
  const auto real_b = batch.b.to(device_);
  // Forwards under autocast, losses in fp32, backward and steps outside (mixed_precision.h);
  // in fp32 the regions do nothing and the scaler just steps.
  auto& scaler = precision_.scaler();
  torch::Tensor fake_b;
  {
    const auto autocast = precision_.autocast();
    fake_b = to_fp32(generator_->forward(real_a));
  }

  // D: fake pairs then real pairs, conditional on A.
  set_requires_grad(*discriminator_, true);
  optimizer_d_->zero_grad();
  torch::Tensor loss_d_fake, loss_d_real;
  {
    const auto autocast = precision_.autocast();
    loss_d_fake = gan_loss_(discriminator_->forward(torch::cat({real_a, fake_b}, 1).detach()), false, true);
    loss_d_real = gan_loss_(discriminator_->forward(torch::cat({real_a, real_b}, 1)), true, true);
  }
  const auto loss_d = (loss_d_fake + loss_d_real) * 0.5;
  scaler.scale(loss_d).backward();
  scaler.step(*optimizer_d_);

  // G: fool the (now frozen) D and stay close to B.
  set_requires_grad(*discriminator_, false);
  optimizer_g_->zero_grad();
  torch::Tensor loss_g_gan;
  {
    const auto autocast = precision_.autocast();
    loss_g_gan = gan_loss_(discriminator_->forward(torch::cat({real_a, fake_b}, 1)), true, false);
  }
  const auto loss_g_l1 = torch::l1_loss(fake_b, real_b) * config_.lambda_L1;
  const auto loss_g = loss_g_gan + loss_g_l1;
  scaler.scale(loss_g).backward();
  scaler.step(*optimizer_g_);
  scaler.update();
  set_requires_grad(*discriminator_, true);

  return {{"G_GAN", loss_g_gan.item<double>()},
          {"G_L1", loss_g_l1.item<double>()},
          {"D_real", loss_d_real.item<double>()},
          {"D_fake", loss_d_fake.item<double>()}};
}

void Pix2PixTask::save_extra_state(NamedTensors& /*tensors*/, Metadata& metadata) const {
  precision_.scaler().save_state(metadata);
}

void Pix2PixTask::load_extra_state(const NamedTensors& /*tensors*/, const Metadata& metadata) {
  precision_.scaler().load_state(metadata);
}

std::vector<std::pair<std::string, torch::nn::Module*>> Pix2PixTask::modules() {
  return {{"G", generator_.get()}, {"D", discriminator_.get()}};
}

std::vector<std::pair<std::string, torch::optim::Optimizer*>> Pix2PixTask::optimizers() {
  return {{"G", optimizer_g_.get()}, {"D", optimizer_d_.get()}};
}

std::vector<std::pair<std::string, nn::Generator>> Pix2PixTask::export_generators() { return {{"G", generator_}}; }

// pytorch-CycleGAN-and-pix2pix's aligned layout: <root>/<split>/ holds A|B side by side. CAT's
// pix2pix recipes: ndf 128, the vanilla GAN loss, BatchNorm teachers.
TaskKind pix2pix_train_task() {
  namespace fs = std::filesystem;
  TaskKind k;
  k.name = kPix2PixTask;
  k.description = "paired translation A -> B (aligned A|B images in train/ and test/), conditional D";
  k.paired = true;
  k.default_ndf = 128;
  k.default_gan_mode = "vanilla";
  k.scaled_norm = "batch";
  k.open_train_set = [](const TrainConfig& c, const data::DatasetOptions& options) {
    return data::open_aligned(c.dataroot, "train", options);
  };
  k.open_validation_set = [](const TrainConfig& c, const data::DatasetOptions& options,
                             std::string* why) -> std::optional<ValidationSet> {
    const fs::path root = c.dataroot;
    if (!fs::is_directory(root / "test")) {
      if (why) *why = "no test split '" + (root / "test").string() + "'";
      return std::nullopt;
    }
    return ValidationSet{data::open_aligned(root, "test", options), nullptr, "test (B)"};
  };
  k.open_train_targets = [](const TrainConfig& c, const data::DatasetOptions& options) {
    return TargetImages{data::open_aligned(c.dataroot, "train", options), true};
  };
  k.make_task = [](const TrainConfig& c, const torch::Device& device) -> std::unique_ptr<TrainTask> {
    return std::make_unique<Pix2PixTask>(c, device);
  };
  return k;
}

}  // namespace ganlite::train
