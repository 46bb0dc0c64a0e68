// Validation on the test split: PSNR and SSIM of a prediction against the truth, averaged over
// images. Paired data (pix2pix) uses each test pair's B; CycleGAN uses `<root>/testA_truth/`
// (same file names as testA/) when present. Images are resized to crop_size (no crop, no flip),
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
ValidationResult evaluate_predictions(const ValidationSet& set,
                                      const std::function<torch::Tensor(const torch::Tensor&)>& predict,
                                      int max_images, const torch::Device& device);
// The generator in eval mode without gradients (its train/eval mode is restored afterwards).
ValidationResult evaluate_generator(nn::GeneratorImpl& generator, const ValidationSet& set, int max_images,
                                    const torch::Device& device);

// Trivial baselines to judge a trained generator against: output = input, and output = the
// mean training B image (resized like validation images).
struct Baselines {
  ValidationResult identity;
  ValidationResult mean_train_b;
};
Baselines evaluate_baselines(const TrainConfig& config, const ValidationSet& set, int max_images);

}  // namespace ganlite::train
