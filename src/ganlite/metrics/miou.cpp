#include "ganlite/metrics/miou.h"

#include <torch/script.h>
#include <torch/torch.h>

#include <cmath>
#include <opencv2/imgcodecs.hpp>

#include "ganlite/data/image_io.h"
#include "ganlite/util/error.h"
#include "ganlite/util/progress.h"

namespace ganlite::metrics {

namespace fs = std::filesystem;
namespace F = torch::nn::functional;

ConfusionMatrix::ConfusionMatrix(int64_t classes) : classes_(classes) {
  if (classes < 1 || classes > 4096) throw UsageError("--classes must be in 1..4096, got " + std::to_string(classes));
  counts_ = torch::zeros({classes, classes}, torch::kInt64);
}

void ConfusionMatrix::add(const torch::Tensor& prediction, const torch::Tensor& label) {
  if (prediction.sizes() != label.sizes()) {
    throw Error("confusion matrix: prediction " + c10::str(prediction.sizes()) + " and label " +
                c10::str(label.sizes()) + " differ in shape");
  }
  const auto p = prediction.flatten().to(torch::kInt64);
  const auto l = label.flatten().to(torch::kInt64).to(p.device());
  const auto keep = (l >= 0) & (l < classes_) & (p >= 0) & (p < classes_);
  const auto index = l.masked_select(keep) * classes_ + p.masked_select(keep);
  counts_ += torch::bincount(index, {}, classes_ * classes_).view({classes_, classes_}).to(torch::kCPU, torch::kInt64);
}

std::vector<double> ConfusionMatrix::per_class_iou() const {
  const auto c = counts_.to(torch::kFloat64);
  const auto diag = c.diagonal();
  const auto iou = diag / (c.sum(1) + c.sum(0) - diag);  // 0/0 = NaN for absent classes
  std::vector<double> out(static_cast<size_t>(classes_));
  for (int64_t i = 0; i < classes_; ++i) out[static_cast<size_t>(i)] = iou[i].item<double>();
  return out;
}

double ConfusionMatrix::mean_iou() const {
  double sum = 0;
  int n = 0;
  for (double v : per_class_iou()) {
    if (!std::isnan(v)) {
      sum += v;
      ++n;
    }
  }
  return n ? sum / n : NAN;
}

namespace {

fs::path label_for(const fs::path& image, const fs::path& labels_dir) {
  const fs::path same = labels_dir / image.filename();
  if (fs::exists(same) && same.extension() == ".png") return same;
  const fs::path png = labels_dir / (image.stem().string() + ".png");
  if (fs::exists(png)) return png;
  throw Error("no label for " + image.string() + " (looked for " + png.string() + ")");
}

torch::Tensor read_label(const fs::path& path) {
  const cv::Mat m = cv::imread(path.string(), cv::IMREAD_UNCHANGED);
  if (m.empty()) throw Error("cannot read label image " + path.string());
  if (m.channels() != 1 || (m.depth() != CV_8U && m.depth() != CV_16U)) {
    throw Error(path.string() + ": a label must be a single-channel 8- or 16-bit PNG of class ids, got " +
                std::to_string(m.channels()) + " channels");
  }
  cv::Mat ids;
  m.convertTo(ids, CV_32S);
  return torch::from_blob(ids.data, {ids.rows, ids.cols}, torch::kInt32).to(torch::kInt64);
}

}  // namespace

struct SegmenterScorer::State {
  std::filesystem::path path;
  MiouOptions options;
  torch::jit::script::Module model;
  torch::Tensor mean, stdev;
  ConfusionMatrix matrix;
  int64_t count = 0;
  State(const fs::path& p, const MiouOptions& o) : path(p), options(o), matrix(o.classes) {}
};

SegmenterScorer::SegmenterScorer(const fs::path& segmenter, const MiouOptions& options, const torch::Device& device)
    : state_(std::make_shared<State>(segmenter, options)) {
  if (!fs::exists(segmenter)) throw Error("segmenter model not found: " + segmenter.string());
  try {
    state_->model = torch::jit::load(segmenter.string(), device);
  } catch (const c10::Error& e) {
    throw Error(segmenter.string() + ": not a TorchScript model (torch.jit.save): " + e.what_without_backtrace());
  }
  state_->model.eval();
  const auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  state_->mean = torch::tensor({options.mean[0], options.mean[1], options.mean[2]}, opts).view({1, 3, 1, 1});
  state_->stdev = torch::tensor({options.std[0], options.std[1], options.std[2]}, opts).view({1, 3, 1, 1});
}

void SegmenterScorer::add(const torch::Tensor& image_u8, const torch::Tensor& label, const std::string& what) {
  torch::NoGradGuard no_grad;
  auto& s = *state_;
  auto x = image_u8.to(s.mean.options()) / 255.0;
  x = (x - s.mean) / s.stdev;
  torch::jit::IValue out;
  try {
    out = s.model.forward({x});
  } catch (const c10::Error& e) {
    throw Error(s.path.string() + ": failed on " + what + ": " + e.what_without_backtrace());
  }
  if (out.isTuple()) out = out.toTuple()->elements()[0];
  if (!out.isTensor()) throw Error(s.path.string() + ": output is not a tensor (expected [1, C, H, W] logits)");
  auto logits = out.toTensor();
  if (logits.dim() != 4 || logits.size(0) != 1 || logits.size(1) != s.options.classes) {
    throw Error(s.path.string() + ": output " + c10::str(logits.sizes()) + " is not [1, " +
                std::to_string(s.options.classes) + ", H, W] (--classes " + std::to_string(s.options.classes) + ")");
  }
  if (logits.size(2) != label.size(0) || logits.size(3) != label.size(1)) {
    logits = F::interpolate(logits.to(torch::kFloat32), F::InterpolateFuncOptions()
                                                           .size(std::vector<int64_t>{label.size(0), label.size(1)})
                                                           .mode(torch::kBilinear)
                                                           .align_corners(false));
  }
  s.matrix.add(logits.argmax(1).squeeze(0), label);
  ++s.count;
}

MiouResult SegmenterScorer::result() const {
  MiouResult result;
  result.count = state_->count;
  result.per_class_iou = state_->matrix.per_class_iou();
  for (auto& v : result.per_class_iou) v *= 100.0;
  result.miou = state_->matrix.mean_iou() * 100.0;
  return result;
}

MiouResult evaluate_segmentation(const fs::path& segmenter, const fs::path& images_dir, const fs::path& labels_dir,
                                 const MiouOptions& options, const torch::Device& device, bool quiet) {
  if (!fs::exists(segmenter)) throw Error("segmenter model not found: " + segmenter.string());
  const auto images = data::list_images(images_dir);
  if (images.empty()) throw Error("no images in " + images_dir.string());
  if (!fs::is_directory(labels_dir)) throw Error("labels folder not found: " + labels_dir.string());
  SegmenterScorer scorer(segmenter, options, device);
  std::unique_ptr<ProgressBar> bar;
  if (!quiet) bar = std::make_unique<ProgressBar>(static_cast<int64_t>(images.size()), "mIoU");
  int64_t done = 0;
  for (const auto& path : images) {
    const auto label = read_label(label_for(path, labels_dir));
    cv::Mat rgb = data::read_image_rgb(path);
    if (!rgb.isContinuous()) rgb = rgb.clone();
    const auto x = torch::from_blob(rgb.data, {1, rgb.rows, rgb.cols, 3}, torch::kUInt8).permute({0, 3, 1, 2}).clone();
    scorer.add(x, label, path.string());
    if (bar) bar->update(++done);
  }
  if (bar) bar->finish();
  return scorer.result();
}

}  // namespace ganlite::metrics
