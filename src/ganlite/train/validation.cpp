#include "ganlite/train/validation.h"

#include <torch/torch.h>

#include <cmath>

#include "ganlite/data/image_io.h"
#include "ganlite/metrics/image_quality.h"
#include "ganlite/util/error.h"

namespace ganlite::train {

namespace fs = std::filesystem;

namespace {

data::DatasetOptions eval_options(const TrainConfig& c) {
  data::DatasetOptions options;
  options.transform.preprocess = "resize_and_crop";
  options.transform.load_size = c.crop_size;  // resize to the crop size: the whole image, no random crop
  options.transform.crop_size = c.crop_size;
  options.transform.flip = false;
  options.direction = c.direction;
  return options;
}

}  // namespace

std::optional<ValidationSet> open_validation_set(const TrainConfig& c, std::string* why) {
  const fs::path root = c.dataroot;
  const auto options = eval_options(c);
  if (c.task == "pix2pix") {
    if (!fs::is_directory(root / "test")) {
      if (why) *why = "no test split '" + (root / "test").string() + "'";
      return std::nullopt;
    }
    return ValidationSet{data::open_aligned(root, "test", options), nullptr, "test (B)"};
  }
  const std::string in = c.direction == "AtoB" ? "testA" : "testB";
  const fs::path truth = root / (in + "_truth");
  if (!fs::is_directory(root / in) || !fs::is_directory(truth)) {
    if (why) *why = "unpaired data has no '" + truth.string() + "' to compare against";
    return std::nullopt;
  }
  ValidationSet set{data::open_single(root / in, options), data::open_single(truth, options), in + "_truth"};
  if (set.inputs->size() != set.truths->size()) {
    throw Error("'" + (root / in).string() + "' has " + std::to_string(set.inputs->size()) + " images but '" +
                truth.string() + "' has " + std::to_string(set.truths->size()));
  }
  return set;
}

ValidationResult evaluate_predictions(const ValidationSet& set,
                                      const std::function<torch::Tensor(const torch::Tensor&)>& predict,
                                      int max_images, const torch::Device& device) {
  ValidationResult result;
  size_t n = set.inputs->size();
  if (max_images > 0) n = std::min(n, static_cast<size_t>(max_images));
  double psnr_sum = 0, ssim_sum = 0;
  for (size_t i = 0; i < n; ++i) {
    const auto sample = set.inputs->get(i, 0);
    torch::Tensor truth;
    if (set.truths) {
      const auto t = set.truths->get(i, 0);
      if (fs::path(t.a_path).filename() != fs::path(sample.a_path).filename()) {
        throw Error("validation truth '" + t.a_path + "' does not match input '" + sample.a_path + "'");
      }
      truth = t.a;
    } else {
      truth = sample.b;
    }
    const auto output = predict(sample.a.unsqueeze(0).to(device));
    const auto x = metrics::quantize_to_uint8(output.to(torch::kCPU));
    const auto y = metrics::quantize_to_uint8(truth.unsqueeze(0));
    if (x.sizes() != y.sizes()) {
      throw Error("prediction for '" + sample.a_path + "' has shape " + c10::str(x.sizes()) + " but the truth has " +
                  c10::str(y.sizes()));
    }
    psnr_sum += metrics::capped_psnr(x, y);
    ssim_sum += metrics::ssim(x, y).item<double>();
    ++result.count;
  }
  if (result.count > 0) {
    result.psnr = psnr_sum / static_cast<double>(result.count);
    result.ssim = ssim_sum / static_cast<double>(result.count);
  }
  return result;
}

ValidationResult evaluate_generator(nn::GeneratorImpl& generator, const ValidationSet& set, int max_images,
                                    const torch::Device& device) {
  const bool was_training = generator.is_training();
  generator.eval();
  torch::NoGradGuard no_grad;
  ValidationResult result;
  try {
    result = evaluate_predictions(set, [&](const torch::Tensor& x) { return generator.forward(x); }, max_images,
                                  device);
  } catch (...) {
    generator.train(was_training);
    throw;
  }
  generator.train(was_training);
  return result;
}

Baselines evaluate_baselines(const TrainConfig& c, const ValidationSet& set, int max_images) {
  // The mean B image of the training split, at validation size.
  data::DatasetOptions options = eval_options(c);
  std::shared_ptr<data::Dataset> train_set;
  torch::Tensor sum;
  int64_t count = 0;
  if (c.task == "pix2pix") {
    train_set = data::open_aligned(c.dataroot, "train", options);
  } else {
    const std::string out = c.direction == "AtoB" ? "trainB" : "trainA";
    train_set = data::open_single(fs::path(c.dataroot) / out, options);
  }
  for (size_t i = 0; i < train_set->size(); ++i) {
    const auto s = train_set->get(i, 0);
    const auto b = c.task == "pix2pix" ? s.b : s.a;
    sum = sum.defined() ? sum + b : b.clone();
    ++count;
  }
  if (count == 0) throw Error("no training images in '" + c.dataroot + "' for the mean-image baseline");
  const auto mean_b = (sum / static_cast<double>(count)).unsqueeze(0);
  Baselines baselines;
  baselines.identity = evaluate_predictions(set, [](const torch::Tensor& x) { return x; }, max_images, torch::kCPU);
  baselines.mean_train_b =
      evaluate_predictions(set, [&](const torch::Tensor&) { return mean_b; }, max_images, torch::kCPU);
  return baselines;
}

}  // namespace ganlite::train
