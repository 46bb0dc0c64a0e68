// Semantic image synthesis as GauGAN trains it (NVlabs/SPADE models/pix2pix_model.py and
// trainers/pix2pix_trainer.py; methods.md 1.5). Registered as `--task spade`: label maps in
// (data/label_maps.h: the cityscapes layout or <split>_labels/ + <split>_img/ [+ <split>_inst/]),
// the generator takes [N, label_nc + 1, H, W] (any registered family; `spade` and
// `inception_spade` are GauGAN's and CAT's), the D judges labels and image together
// (label_nc + 1 + 3 channels; `--netD multiscale` by default). Per step, as SPADE's trainer:
//   G: hinge GAN (-mean D(fake), over scales) + lambda_feat * feature matching + lambda_vgg * VGG19
//   D: relu(1 - D(real)) + relu(1 + D(fake)) over scales, on a fake regenerated without gradient
// with fakes and reals judged in one D pass (concatenated along the batch, as SPADE's discriminate).
// TTUR unless no_ttur: G lr / 2, D lr * 2, Adam betas (0, 0.9). No L1 term.
#pragma once
#include <torch/optim/adam.h>

#include <memory>
#include <optional>

#include "ganlite/data/label_maps.h"
#include "ganlite/train/gan_loss.h"
#include "ganlite/train/networks.h"
#include "ganlite/train/task.h"
#include "ganlite/train/train_config.h"
#include "ganlite/train/vgg_loss.h"

namespace ganlite::train {

inline constexpr const char* kSpadeTask = "spade";

// SPADE's GAN feature matching: sum over scales i and intermediate features j (not the logits) of
// L1(fake_ij, real_ij) / number of scales, the real side without gradient. Unweighted.
torch::Tensor feature_matching_loss(const nn::DiscriminatorOutput& fake, const nn::DiscriminatorOutput& real);

// D(semantics | fake) and D(semantics | real) from one pass over both (SPADE's discriminate).
struct FakeAndReal {
  nn::DiscriminatorOutput fake;
  nn::DiscriminatorOutput real;
};
FakeAndReal discriminate(nn::DiscriminatorImpl& d, const torch::Tensor& semantics, const torch::Tensor& fake,
                         const torch::Tensor& real);

// The generator side of SPADE's objective, with its weights applied; a term that is off is
// undefined. Shared with distillation (the student's GAN terms).
struct SpadeGeneratorLosses {
  torch::Tensor gan;
  torch::Tensor feat;
  torch::Tensor vgg;
  torch::Tensor total() const;
};

class SpadeObjective {
 public:
  // Loads the VGG19 when config.vgg_weights is given (else the VGG term is off, said once on stderr).
  SpadeObjective(const TrainConfig& config, const torch::Device& device);
  SpadeGeneratorLosses generator_losses(nn::DiscriminatorImpl& d, const torch::Tensor& semantics,
                                        const torch::Tensor& fake, const torch::Tensor& real);
  // relu(1 - D(real)) and relu(1 + D(fake)), means over scales; `fake` is detached here.
  std::pair<torch::Tensor, torch::Tensor> discriminator_losses(nn::DiscriminatorImpl& d, const torch::Tensor& semantics,
                                                               const torch::Tensor& fake, const torch::Tensor& real);
  bool has_vgg() const { return vgg_.has_value(); }

 private:
  TrainConfig config_;
  GanLoss gan_loss_;
  std::optional<SpadeVggLoss> vgg_;
};

// The label-map options of a run: config's label_nc, preprocess, aspect ratio, instances, with
// `options`' sizes and flip (the trainer's training or validation transform).
data::LabelMapOptions label_map_options(const TrainConfig& config, const data::DatasetOptions& options);

class SpadeTask : public TrainTask {
 public:
  SpadeTask(const TrainConfig& config, const torch::Device& device);

  std::string name() const override { return kSpadeTask; }
  Losses train_step(const data::Batch& batch) override;
  std::vector<std::pair<std::string, torch::nn::Module*>> modules() override;
  std::vector<std::pair<std::string, torch::optim::Optimizer*>> optimizers() override;
  double lr_factor(const std::string& optimizer) const override;
  std::vector<std::pair<std::string, nn::Generator>> export_generators() override { return {{"G", generator_}}; }
  std::vector<std::pair<std::string, torch::nn::Module*>> export_discriminators() override {
    return {{"D", discriminator_.get()}};
  }
  Metadata discriminator_metadata() const override;
  nn::Generator sample_generator() override { return generator_; }

  nn::Discriminator discriminator() { return discriminator_; }

 private:
  TrainConfig config_;
  torch::Device device_;
  nn::Generator generator_;
  nn::Discriminator discriminator_;
  SpadeObjective objective_;
  std::unique_ptr<torch::optim::Adam> optimizer_g_;
  std::unique_ptr<torch::optim::Adam> optimizer_d_;
};

}  // namespace ganlite::train
