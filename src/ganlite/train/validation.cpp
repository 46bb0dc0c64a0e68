#include "ganlite/train/validation.h"

#include <torch/torch.h>

#include <cmath>

#include "ganlite/data/image_io.h"
#include "ganlite/metrics/image_quality.h"
#include "ganlite/train/distributed.h"
#include "ganlite/train/task_registry.h"
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
  return task_kind(c.task).open_validation_set(c, eval_options(c), why);
}

namespace {

// The truth for input `i`: the truth set's image of the same file name, else the pair's B.
torch::Tensor truth_for(const ValidationSet& set, size_t i, const data::Sample& sample) {
  if (!set.truths) return sample.b;
  const auto t = set.truths->get(i, 0);
  if (fs::path(t.a_path).filename() != fs::path(sample.a_path).filename()) {
    throw Error("validation truth '" + t.a_path + "' does not match input '" + sample.a_path + "'");
  }
  return t.a;
}

struct ScoreSums {
  double psnr = 0, ssim = 0;
  int64_t count = 0;
};

// Scores images first, first + stride, ... below n, summed in that order.
ScoreSums sum_scores(const ValidationSet& set, const std::function<torch::Tensor(const torch::Tensor&)>& predict,
                     size_t n, size_t first, size_t stride, const torch::Device& device) {
  ScoreSums sums;
  for (size_t i = first; i < n; i += stride) {
    const auto sample = set.inputs->get(i, 0);
    const auto truth = truth_for(set, i, sample);
    const auto output = predict(sample.a.unsqueeze(0).to(device));
    const auto x = metrics::quantize_to_uint8(output.to(torch::kCPU));
    const auto y = metrics::quantize_to_uint8(truth.unsqueeze(0));
    if (x.sizes() != y.sizes()) {
      throw Error("prediction for '" + sample.a_path + "' has shape " + c10::str(x.sizes()) + " but the truth has " +
                  c10::str(y.sizes()));
    }
    sums.psnr += metrics::capped_psnr(x, y);
    sums.ssim += metrics::ssim(x, y).item<double>();
    ++sums.count;
  }
  return sums;
}

// Every rank's sums added (fp64; the count is exact in a double up to 2^53).
void all_reduce_sums(Distributed& dist, ScoreSums& sums) {
  auto t = torch::tensor({sums.psnr, sums.ssim, static_cast<double>(sums.count)}, torch::kFloat64);
  dist.all_reduce_sum(t);
  sums.psnr = t[0].item<double>();
  sums.ssim = t[1].item<double>();
  sums.count = static_cast<int64_t>(t[2].item<double>());
}

}  // namespace

ValidationResult evaluate_predictions(const ValidationSet& set,
                                      const std::function<torch::Tensor(const torch::Tensor&)>& predict,
                                      int max_images, const torch::Device& device, Distributed* dist) {
  size_t n = set.inputs->size();
  if (max_images > 0) n = std::min(n, static_cast<size_t>(max_images));
  const bool sharded = dist != nullptr && dist->size() > 1;
  const size_t first = sharded ? static_cast<size_t>(dist->rank()) : 0;
  const size_t stride = sharded ? static_cast<size_t>(dist->size()) : 1;
  ScoreSums sums = sum_scores(set, predict, n, first, stride, device);
  if (sharded) all_reduce_sums(*dist, sums);
  ValidationResult result;
  result.count = sums.count;
  if (result.count > 0) {
    result.psnr = sums.psnr / static_cast<double>(result.count);
    result.ssim = sums.ssim / static_cast<double>(result.count);
  }
  return result;
}

ValidationResult evaluate_generator(nn::GeneratorImpl& generator, const ValidationSet& set, int max_images,
                                    const torch::Device& device, Distributed* dist) {
  const bool was_training = generator.is_training();
  generator.eval();
  torch::NoGradGuard no_grad;
  ValidationResult result;
  try {
    result = evaluate_predictions(set, [&](const torch::Tensor& x) { return generator.forward(x); }, max_images,
                                  device, dist);
  } catch (...) {
    generator.train(was_training);
    throw;
  }
  generator.train(was_training);
  return result;
}

Baselines evaluate_baselines(const TrainConfig& c, const ValidationSet& set, int max_images, Distributed* dist) {
  // The mean B image of the training split, at validation size.
  data::DatasetOptions options = eval_options(c);
  const TargetImages targets = task_kind(c.task).open_train_targets(c, options);
  torch::Tensor sum;
  int64_t count = 0;
  for (size_t i = 0; i < targets.images->size(); ++i) {
    const auto s = targets.images->get(i, 0);
    const auto b = targets.in_b ? s.b : s.a;
    sum = sum.defined() ? sum + b : b.clone();
    ++count;
  }
  if (count == 0) throw Error("no training images in '" + c.dataroot + "' for the mean-image baseline");
  const auto mean_b = (sum / static_cast<double>(count)).unsqueeze(0);
  Baselines baselines;
  baselines.identity =
      evaluate_predictions(set, [&](const torch::Tensor& x) { return preview_input(c, x); }, max_images, torch::kCPU, dist);
  baselines.mean_train_b =
      evaluate_predictions(set, [&](const torch::Tensor&) { return mean_b; }, max_images, torch::kCPU, dist);
  return baselines;
}

}  // namespace ganlite::train
