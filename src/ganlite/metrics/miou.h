// Semantic-segmentation mIoU of generated images (the cityscapes protocol: a pretrained
// segmenter labels the generated images, scored against the ground-truth label maps).
#pragma once
#include <torch/types.h>

#include <array>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace ganlite::metrics {

// Confusion matrix over `classes` classes; rows are ground truth, columns predictions. Label
// pixels outside [0, classes) (255 = ignore, in particular) are not counted, as in
// gan-compression's fast_hist.
class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(int64_t classes);
  // prediction and label: integer tensors of the same shape, any device.
  void add(const torch::Tensor& prediction, const torch::Tensor& label);
  // IoU per class in [0, 1]; NaN for a class absent from both labels and predictions.
  std::vector<double> per_class_iou() const;
  // Mean over the classes whose IoU is not NaN (numpy's nanmean); NaN when none is.
  double mean_iou() const;
  const torch::Tensor& counts() const { return counts_; }  // [classes, classes] int64, CPU
  int64_t classes() const { return classes_; }

 private:
  int64_t classes_;
  torch::Tensor counts_;
};

struct MiouOptions {
  int64_t classes = 19;
  // Per-channel normalisation of the [0, 1] RGB input before the segmenter; the defaults leave
  // it as is. gan-compression's DRN expects mean 0.2901, 0.3281, 0.2870, std 0.1830, 0.1866, 0.1845.
  std::array<double, 3> mean{0, 0, 0};
  std::array<double, 3> std{1, 1, 1};
};

struct MiouResult {
  double miou = 0;                   // percent, like the papers' tables
  std::vector<double> per_class_iou;  // percent; NaN for absent classes
  int64_t count = 0;                 // images evaluated
};

// A TorchScript segmenter (input and output as evaluate_segmentation's) scoring images one at a
// time against label maps: for images that are never written to a folder (`ganlite eval`).
class SegmenterScorer {
 public:
  // Throws Error naming the file when it is missing or not TorchScript.
  SegmenterScorer(const std::filesystem::path& segmenter, const MiouOptions& options, const torch::Device& device);
  // image_u8: [1, 3, H, W] uint8 RGB; label: [h, w] integer class ids (ids outside [0, classes),
  // 255 in particular, are not counted). `what` names the image in errors.
  void add(const torch::Tensor& image_u8, const torch::Tensor& label, const std::string& what);
  MiouResult result() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// Runs a TorchScript segmenter (torch::jit::load; input [1, 3, H, W] float RGB, normalised as
// above; output [1, C, h, w] logits, or a tuple whose first element is) on every image of
// `images_dir`. Each label is the single-channel PNG of the same stem in `labels_dir`; logits are
// resized bilinearly to the label's size before the argmax. Progress bar unless `quiet`.
MiouResult evaluate_segmentation(const std::filesystem::path& segmenter, const std::filesystem::path& images_dir,
                                 const std::filesystem::path& labels_dir, const MiouOptions& options,
                                 const torch::Device& device, bool quiet = false);

}  // namespace ganlite::metrics
