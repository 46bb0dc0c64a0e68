// pix2pix (public models/pix2pix_model.py): G maps A to B; D is conditional (sees A and B
// concatenated). Per step: D update with 0.5 * (fake + real), then G update with
// GAN(D(A, G(A))) + lambda_L1 * L1(G(A), B). Registered as `--task pix2pix` (task_registry.h):
// aligned A|B images in train/ and test/.
#pragma once
#include <torch/optim/adam.h>

#include <memory>

#include "ganlite/train/gan_loss.h"
#include "ganlite/train/mixed_precision.h"
#include "ganlite/train/networks.h"
#include "ganlite/train/task.h"
#include "ganlite/train/train_config.h"

namespace ganlite::train {

inline constexpr const char* kPix2PixTask = "pix2pix";

class Pix2PixTask : public TrainTask {
 public:
  // Builds G and D (seed torch first for reproducible init) on `device`.
  Pix2PixTask(const TrainConfig& config, const torch::Device& device);

  std::string name() const override { return kPix2PixTask; }
  Losses train_step(const data::Batch& batch) override;
  std::vector<std::pair<std::string, torch::nn::Module*>> modules() override;
  std::vector<std::pair<std::string, torch::optim::Optimizer*>> optimizers() override;
  std::vector<std::pair<std::string, nn::Generator>> export_generators() override;
  std::vector<std::pair<std::string, torch::nn::Module*>> export_discriminators() override { return {{"D", discriminator_.get()}}; }
  Metadata discriminator_metadata() const override { return discriminator_metadata_for(config_, 6); }
  nn::Generator sample_generator() override { return generator_; }
  // The fp16 loss scaler's state (nothing for fp32 / bf16 runs).
  void save_extra_state(NamedTensors& tensors, Metadata& metadata) const override;
  void load_extra_state(const NamedTensors& tensors, const Metadata& metadata) override;

  nn::Discriminator discriminator() { return discriminator_; }

 private:
  TrainConfig config_;
  torch::Device device_;
  MixedPrecision precision_;
  nn::Generator generator_;
  nn::Discriminator discriminator_;
  GanLoss gan_loss_;
  std::unique_ptr<torch::optim::Adam> optimizer_g_;
  std::unique_ptr<torch::optim::Adam> optimizer_d_;
};

}  // namespace ganlite::train
