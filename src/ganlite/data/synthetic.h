// Synthetic datasets in the public folder layouts, so every pipeline can be trained and scored
// end to end without downloads. Each image depends only on (seed, split, index): generation is
// deterministic whatever the thread count.
//
//   edges2shapes   (paired, like edges2shoes)   train/ test/ of A|B side by side (2S x S):
//                  A = dark edges on white, B = shapes shaded in a colour set by their kind.
//   shapes2stripes (unpaired, like horse2zebra) trainA/ testA/ plain objects, trainB/ testB/
//                  striped objects (each row of an object starts light at its left edge),
//                  testA_truth/ the true striped version of each testA image.
//   labels2scenes  (paired, like cityscapes)    train/ test/ of A|B (colour-coded label map |
//                  textured rendering) and, in the label-map layout of data/label_maps.h,
//                  <split>_labels/ class ids (8-bit), <split>_inst/ instance ids (16-bit, as
//                  cityscapes' instanceIds: class * 1000 + k for buildings, cars, persons) and
//                  <split>_img/ the rendering.
#pragma once
#include <opencv2/core.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace ganlite::data {

struct SyntheticOptions {
  std::string kind = "edges2shapes";  // edges2shapes | shapes2stripes | labels2scenes
  int count = 100;                    // training images (per domain for shapes2stripes)
  int test_count = -1;                // -1: count / 4, at least 1
  int size = 64;                      // image side S (>= 16)
  uint64_t seed = 0;
  int threads = 0;     // 0: one per core
  bool force = false;  // replace a non-empty output folder
};

struct SyntheticSummary {
  std::string kind;
  int size = 0;
  int train_count = 0;
  int test_count = 0;
  uint64_t seed = 0;
  int64_t files_written = 0;
  double seconds = 0;
};

const std::vector<std::string>& synthetic_kinds();

// labels2scenes classes: names and the colours of the label map (index = class id).
const std::vector<std::string>& scene_class_names();
const std::vector<cv::Vec3b>& scene_class_palette();

// One rendered example. `a` and `b` are S x S RGB; `labels` holds class ids and `instances`
// instance ids (labels2scenes only).
// For shapes2stripes `a` is the plain and `b` the striped rendering of the same objects.
struct SyntheticExample {
  cv::Mat a;
  cv::Mat b;
  cv::Mat labels;
  cv::Mat instances;
};

// Renders example `index` of `split` ("train", "test"; for shapes2stripes "trainA", "trainB",
// "testA", "testB", which draw independent objects). Throws UsageError for an unknown kind.
SyntheticExample render_synthetic(const std::string& kind, int size, uint64_t seed, const std::string& split,
                                  int64_t index);

// Writes the dataset into `out` (see the layouts above) plus `out/dataset.json`. Files are
// generated in a hidden sibling folder that is renamed into place at the end, so a failure
// leaves nothing half-written. A non-empty `out` is refused (UsageError) unless `force`.
// `progress(done, total)` is called from the calling thread.
SyntheticSummary make_synthetic_dataset(const std::filesystem::path& out, const SyntheticOptions& options,
                                        const std::function<void(int64_t done, int64_t total)>& progress = {});

}  // namespace ganlite::data
