// CycleGAN (public models/cycle_gan_model.py): G_A: A -> B, G_B: B -> A, D_A judges B images,
// D_B judges A images. Per step: both generators together (GAN + cycle * lambda_A/B + identity *
// lambda_identity * lambda_B/A), then both discriminators on a history pool of fakes, each with
// 0.5 * (real + fake). Registered as `--task cyclegan` (task_registry.h): unpaired trainA/ and
// trainB/, validated against testA_truth/ when present.
#pragma once
#include <torch/optim/adam.h>

#include <memory>

#include "ganlite/train/gan_loss.h"
#include "ganlite/train/image_pool.h"
#include "ganlite/train/mixed_precision.h"
#include "ganlite/train/networks.h"
#include "ganlite/train/task.h"
#include "ganlite/train/train_config.h"

namespace ganlite::train {

inline constexpr const char* kCycleGanTask = "cyclegan";

class CycleGanTask : public TrainTask {
 public:
  CycleGanTask(const TrainConfig& config, const torch::Device& device);

  std::string name() const override { return kCycleGanTask; }
  Losses train_step(const data::Batch& batch) override;
  std::vector<std::pair<std::string, torch::nn::Module*>> modules() override;
  std::vector<std::pair<std::string, torch::optim::Optimizer*>> optimizers() override;
  std::vector<std::pair<std::string, nn::Generator>> export_generators() override;
  std::vector<std::pair<std::string, torch::nn::Module*>> export_discriminators() override { return {{"D_A", discriminator_a_.get()}, {"D_B", discriminator_b_.get()}}; }
  Metadata discriminator_metadata() const override { return discriminator_metadata_for(config_, 3); }
  nn::Generator sample_generator() override { return generator_a_; }
  void save_extra_state(NamedTensors& tensors, Metadata& metadata) const override;
  void load_extra_state(const NamedTensors& tensors, const Metadata& metadata) override;

 private:
  torch::Tensor discriminator_loss(nn::Discriminator& d, const torch::Tensor& real, const torch::Tensor& fake);

  TrainConfig config_;
  torch::Device device_;
  MixedPrecision precision_;
  nn::Generator generator_a_;
  nn::Generator generator_b_;
  nn::Discriminator discriminator_a_;
  nn::Discriminator discriminator_b_;
  GanLoss gan_loss_;
  ImagePool fake_a_pool_;
  ImagePool fake_b_pool_;
  std::unique_ptr<torch::optim::Adam> optimizer_g_;
  std::unique_ptr<torch::optim::Adam> optimizer_d_;
};

}  // namespace ganlite::train
