// Label maps for semantic image synthesis (GauGAN / SPADE, methods.md 1.5): class-id maps and
// instance-id maps in, the generator's input out. A map of class ids becomes a one-hot tensor of
// `label_nc` channels followed by one instance-edge channel (NVlabs/SPADE
// models/pix2pix_model.py, preprocess_input and get_edges): label_nc + 1 channels, no don't-care
// channel. Two layouts on disk:
//
//   cityscapes (as SPADE / CAT read it): root/gtFine/<split>/<city>/<name>_gtFine_labelIds.png,
//     <name>_gtFine_instanceIds.png (16-bit) and root/leftImg8bit/<split>/<city>/<name>_leftImg8bit.png,
//     matched by <city>_<seq>_<frame>; split "test" reads val/ as SPADE does; label_nc 35.
//   label folders (any other data, and `make-dataset --kind labels2scenes`):
//     root/<split>_labels/  class ids, 8- or 16-bit single-channel PNG
//     root/<split>_inst/    instance ids, optional (without it the class map's own edges are used)
//     root/<split>_img/     RGB images
//     matched by file stem; split "train", "test" (or "val").
//
// Class id 255 is "unlabelled": its pixels get an all-zero one-hot vector (SPADE maps it to
// label_nc, a don't-care channel this layout has not). Any other id >= label_nc is refused,
// naming the file. Label and instance maps are resized by nearest neighbour at pixel centres (as
// PIL's NEAREST), images by bicubic interpolation (area averaging when shrinking).
#pragma once
#include <opencv2/core.hpp>
#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "ganlite/data/dataset.h"

namespace ganlite::data {

inline constexpr int kMaxLabelClasses = 1024;   // label_nc
inline constexpr int64_t kUnlabelledId = 255;
// The most elements of one semantic input ((label_nc + 1) x H x W, 4 GiB in fp32).
inline constexpr int64_t kMaxSemanticElements = int64_t{1} << 30;

// Class ids [N, H, W] (any integer or float type holding integers) -> [N, label_nc, H, W] float
// one-hot. Id 255 gives zeros; other ids outside [0, label_nc) throw Error naming `what`.
torch::Tensor one_hot_labels(const torch::Tensor& labels, int64_t label_nc, const std::string& what = "label map");
// Instance ids [N, H, W] -> [N, 1, H, W] float: 1 where any 4-neighbour has another id.
torch::Tensor instance_edges(const torch::Tensor& instances);
// [N, label_nc + 1, H, W]: the one-hot classes, then the edges of `instances` (of `labels` when
// `instances` is undefined).
torch::Tensor semantic_input(const torch::Tensor& labels, const torch::Tensor& instances, int64_t label_nc,
                             const std::string& what = "label map");

// Nearest-neighbour resize of an id map (CV_32S) at pixel centres: source index
// floor((i + 0.5) * in / out), as PIL's Image.NEAREST.
cv::Mat resize_ids_nearest(const cv::Mat& ids, cv::Size size);

// A semantic input [N, C, H, W] (C = label_nc + 1) as colour images [N, 3, H, W] in [-1, 1]:
// each pixel coloured by its class (cityscapes-like colours), edges dark. For sample grids.
torch::Tensor colorize_semantic_input(const torch::Tensor& input);

struct LabelMapOptions {
  int label_nc = 35;
  // fixed: resize to crop_size wide, round(crop_size / aspect_ratio) high (SPADE's cityscapes);
  // resize_and_crop: resize to load_size square, random crop_size square crop; none: as stored.
  std::string preprocess = "fixed";
  int load_size = 512;
  int crop_size = 512;
  double aspect_ratio = 2.0;
  bool flip = true;           // random horizontal flip (training)
  bool use_instances = true;  // read instance maps where the layout has them
};

// Throws UsageError naming the bad field.
void validate_label_map_options(const LabelMapOptions& options);

// True when `root` holds gtFine/ and leftImg8bit/ (the cityscapes layout).
bool is_cityscapes_layout(const std::filesystem::path& root);

// The split in whichever layout `root` holds. Samples: `a` the semantic input
// [label_nc + 1, H, W], `b` the image [3, H, W] in [-1, 1]; a_path the label map, b_path the
// image. Throws Error naming the folder when files are missing or unmatched.
std::shared_ptr<Dataset> open_label_maps(const std::filesystem::path& root, const std::string& split,
                                         const LabelMapOptions& options);

// One label map file (and instance map, or "") as [1, label_nc + 1, H, W], at the file's size, or
// resized by nearest neighbour to `size` when it is not empty. For `ganlite translate`.
torch::Tensor read_semantic_input(const std::filesystem::path& label_path, const std::filesystem::path& instance_path,
                                  int label_nc, cv::Size size = {});

}  // namespace ganlite::data
