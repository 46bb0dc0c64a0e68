// Validation on the test split: PSNR and SSIM of a prediction against the truth, averaged over
// images. The task's entry (task_registry.h) opens the split: paired data (pix2pix) uses each test
// pair's B; CycleGAN uses `<root>/testA_truth/` (same file names as testA/) when present. Images are resized to crop_size (no crop, no flip),
// so every generator sees a size it supports.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "ganlite/data/dataset.h"
#include "ganlite/nn/generator.h"
#include "ganlite/train/train_config.h"

namespace ganlite::train {

class Distributed;

struct ValidationSet {
  std::shared_ptr<data::Dataset> inputs;  // sample.a is the input
  std::shared_ptr<data::Dataset> truths;  // null: the truth is inputs' sample.b
  std::string description;                // "test (B)", "testA_truth"
};

struct ValidationResult {
  double psnr = 0.0;  // dB, mean over images of metrics::psnr (uint8-quantised, range 255), each capped at 100
  double ssim = 0.0;
  int64_t count = 0;
};

// The validation set for `config`, or nullopt (with the reason in `why`) when the data has none.
std::optional<ValidationSet> open_validation_set(const TrainConfig& config, std::string* why = nullptr);

// `predict` maps one input [1, 3, H, W] (on `device`) to an image of the truth's shape.
// With a data-parallel world (every rank must call it), rank r of N scores images r, r+N, ...
// of the first max_images and the sums are all-reduced: every rank gets the mean over all of
// them (the single-process mean up to the fp64 summation order). Without one, images in order.
ValidationResult evaluate_predictions(const ValidationSet& set,
                                      const std::function<torch::Tensor(const torch::Tensor&)>& predict,
                                      int max_images, const torch::Device& device, Distributed* dist = nullptr);
// The generator in eval mode without gradients (its train/eval mode is restored afterwards).
ValidationResult evaluate_generator(nn::GeneratorImpl& generator, const ValidationSet& set, int max_images,
                                    const torch::Device& device, Distributed* dist = nullptr);

// Trivial baselines to judge a trained generator against: output = input, and output = the
// mean training B image (resized like validation images).
struct Baselines {
  ValidationResult identity;
  ValidationResult mean_train_b;
};
// Sharded over `dist`'s ranks as evaluate_predictions (the mean image is every rank's own).
Baselines evaluate_baselines(const TrainConfig& config, const ValidationSet& set, int max_images,
                             Distributed* dist = nullptr);

}  // namespace ganlite::train
