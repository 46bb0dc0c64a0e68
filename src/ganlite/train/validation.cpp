#include "ganlite/train/validation.h"

#include <torch/torch.h>

#include <cmath>

#include "ganlite/data/image_io.h"
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

// Both images quantised to uint8 first, as saved outputs would be; [1, 3, H, W] in [-1, 1].
torch::Tensor to_uint8_scale(const torch::Tensor& t) {
  return ((t.detach().to(torch::kFloat32) + 1.0) * 127.5).round().clamp(0, 255);
}

// PSNR with data range 255; identical images give 100 dB rather than infinity so means stay finite.
double psnr_255(const torch::Tensor& x, const torch::Tensor& y) {
  const double mse = (x - y).pow(2).mean().item<double>();
  if (mse <= 1e-10) return 100.0;
  return 10.0 * std::log10(255.0 * 255.0 / mse);
}

// SSIM: Gaussian window 11, sigma 1.5, K1 0.01, K2 0.03, valid window positions, mean over channels.
double ssim_255(const torch::Tensor& x, const torch::Tensor& y) {
  const int64_t size = std::min<int64_t>({11, x.size(2), x.size(3)});
  auto coords = torch::arange(size, x.options()) - (size - 1) / 2.0;
  auto g = torch::exp(-coords.pow(2) / (2 * 1.5 * 1.5));
  g = g / g.sum();
  const int64_t channels = x.size(1);
  const auto window = torch::outer(g, g).expand({channels, 1, size, size}).contiguous();
  auto filter = [&](const torch::Tensor& t) { const std::vector<int64_t> one{1}, zero{0};
    return torch::conv2d(t, window, torch::Tensor(), one, zero, one, channels); };
  const double c1 = std::pow(0.01 * 255, 2), c2 = std::pow(0.03 * 255, 2);
  const auto mu_x = filter(x);
  const auto mu_y = filter(y);
  const auto sigma_xx = filter(x * x) - mu_x * mu_x;
  const auto sigma_yy = filter(y * y) - mu_y * mu_y;
  const auto sigma_xy = filter(x * y) - mu_x * mu_y;
  const auto ssim_map = ((2 * mu_x * mu_y + c1) * (2 * sigma_xy + c2)) /
                   ((mu_x * mu_x + mu_y * mu_y + c1) * (sigma_xx + sigma_yy + c2));
  return ssim_map.mean().item<double>();
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
    const auto x = to_uint8_scale(output.to(torch::kCPU));
    const auto y = to_uint8_scale(truth.unsqueeze(0));
    if (x.sizes() != y.sizes()) {
      throw Error("prediction for '" + sample.a_path + "' has shape " + c10::str(x.sizes()) + " but the truth has " +
                  c10::str(y.sizes()));
    }
    psnr_sum += psnr_255(x, y);
    ssim_sum += ssim_255(x, y);
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
