// What one training step does, separated from the loop (trainer.h) that runs it: pix2pix and
// CycleGAN now, the CAT / DCD / WKD distillers later. The loop owns epochs, lr schedule,
// checkpoints, resume, logs, samples, validation, signals and the NaN guard; a task owns its
// networks, optimizers, losses and any extra state (image pools).
#pragma once
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <torch/types.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ganlite/data/loader.h"
#include "ganlite/nn/generator.h"

namespace ganlite::train {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;
using Metadata = std::map<std::string, std::string>;
// Losses of one step by name, in a fixed order (e.g. G_GAN, G_L1, D_real, D_fake).
using Losses = std::vector<std::pair<std::string, double>>;

class TrainTask {
 public:
  virtual ~TrainTask() = default;

  virtual std::string name() const = 0;
  // One optimisation step (forward, backward, optimizer steps) on a batch already on the device.
  virtual Losses train_step(const data::Batch& batch) = 0;

  // Networks to checkpoint, under the names that prefix their keys ("G", "D", "G_A", ...).
  virtual std::vector<std::pair<std::string, torch::nn::Module*>> modules() = 0;
  // Optimizers to checkpoint ("G", "D"); the loop sets their lr every epoch.
  virtual std::vector<std::pair<std::string, torch::optim::Optimizer*>> optimizers() = 0;
  // The factor on the run's lr for one of optimizers() (SPADE's TTUR: G 1/2, D 2).
  virtual double lr_factor(const std::string& optimizer) const { return 1.0; }
  // Generators exported as user-facing files `<tag>_net_<name>.safetensors` ("G", or "G_A" and "G_B").
  virtual std::vector<std::pair<std::string, nn::Generator>> export_generators() = 0;
  // Discriminators exported as `<tag>_net_<name>.safetensors` with metadata describing them
  // (the DCD distiller starts from the teacher's D).
  virtual std::vector<std::pair<std::string, torch::nn::Module*>> export_discriminators() { return {}; }
  virtual Metadata discriminator_metadata() const { return {}; }
  // The generator used for sample grids and validation (maps the A side to the B side).
  virtual nn::Generator sample_generator() = 0;

  // Generators judged on their own at each validation besides the sample generator (a
  // distiller's online teacher): the loop logs `<name>_psnr` / `<name>_ssim` in val.jsonl, exports
  // them with every tag but "best", and as `best_net_<name>` when record_validation says the
  // score is the best so far for that name (the task keeps the record in its checkpointed state).
  virtual std::vector<std::pair<std::string, nn::Generator>> tracked_generators() { return {}; }
  virtual bool record_validation(const std::string& /*name*/, double /*psnr*/) { return false; }

  // Extra state (image pools) saved inside the training checkpoint.
  virtual void save_extra_state(NamedTensors& tensors, Metadata& metadata) const {}
  virtual void load_extra_state(const NamedTensors& tensors, const Metadata& metadata) {}
};

}  // namespace ganlite::train
