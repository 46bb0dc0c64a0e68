#include "ganlite/data/label_maps.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <opencv2/imgproc.hpp>
#include <vector>

#include "ganlite/data/image_io.h"
#include "ganlite/data/sample_rng.h"
#include "ganlite/util/error.h"

namespace ganlite::data {

namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// CV_32S map -> int64 tensor [H, W] (copied: the map may be a non-contiguous crop).
torch::Tensor ids_to_tensor(const cv::Mat& ids) {
  const cv::Mat dense = ids.isContinuous() ? ids : ids.clone();
  return torch::from_blob(dense.data, {dense.rows, dense.cols}, torch::kInt32).to(torch::kInt64);
}

void check_semantic_size(int64_t label_nc, int64_t h, int64_t w, const std::string& what) {
  if ((label_nc + 1) * h * w > kMaxSemanticElements) {
    throw Error(what + ": " + std::to_string(label_nc + 1) + " x " + std::to_string(h) + " x " + std::to_string(w) +
                " input elements, more than the limit of " + std::to_string(kMaxSemanticElements));
  }
}

struct LabelMapFiles {
  fs::path label;
  fs::path instance;  // empty: none
  fs::path image;
};

// What one sample's geometry is: the size maps and image are resized to, the crop, the flip.
struct Geometry {
  cv::Size resized;
  cv::Rect crop;
  bool flip = false;
};

Geometry draw_geometry(const LabelMapOptions& o, cv::Size stored, SampleRng& rng) {
  Geometry g;
  if (o.preprocess == "fixed") {
    g.resized = {o.crop_size, std::max(1, static_cast<int>(std::lround(o.crop_size / o.aspect_ratio)))};
    g.crop = {0, 0, g.resized.width, g.resized.height};
  } else if (o.preprocess == "resize_and_crop") {
    g.resized = {o.load_size, o.load_size};
    const int x = static_cast<int>(rng.below(static_cast<uint64_t>(o.load_size - o.crop_size) + 1));
    const int y = static_cast<int>(rng.below(static_cast<uint64_t>(o.load_size - o.crop_size) + 1));
    g.crop = {x, y, o.crop_size, o.crop_size};
  } else {  // none
    g.resized = stored;
    g.crop = {0, 0, stored.width, stored.height};
  }
  g.flip = o.flip && rng.below(2) == 1;
  return g;
}

cv::Mat apply_geometry_ids(const cv::Mat& ids, const Geometry& g) {
  cv::Mat out = ids.size() == g.resized ? ids : resize_ids_nearest(ids, g.resized);
  out = out(g.crop);
  if (g.flip) {
    cv::Mat flipped;
    cv::flip(out, flipped, 1);
    return flipped;
  }
  return out.clone();
}

cv::Mat apply_geometry_image(const cv::Mat& rgb, const Geometry& g) {
  cv::Mat out = rgb;
  if (out.size() != g.resized) {
    // SPADE resizes images bicubically; INTER_AREA is OpenCV's closest match to PIL's antialiased shrink.
    const bool shrink = g.resized.width < out.cols && g.resized.height < out.rows;
    cv::Mat resized;
    cv::resize(out, resized, g.resized, 0, 0, shrink ? cv::INTER_AREA : cv::INTER_CUBIC);
    out = resized;
  }
  out = out(g.crop);
  if (g.flip) {
    cv::Mat flipped;
    cv::flip(out, flipped, 1);
    return flipped;
  }
  return out.clone();
}

class LabelMapDataset final : public Dataset {
 public:
  LabelMapDataset(std::vector<LabelMapFiles> files, LabelMapOptions options)
      : files_(std::move(files)), options_(std::move(options)) {}

  size_t size() const override { return files_.size(); }
  size_t skipped_files() const override { return 0; }

  Sample get(size_t index, uint64_t seed) const override {
    require(index < files_.size(), "sample index " + std::to_string(index) + " out of range");
    const LabelMapFiles& f = files_[index];
    const cv::Mat labels = read_image_ids(f.label);
    const cv::Mat rgb = read_image_rgb(f.image);
    cv::Mat instances;
    if (!f.instance.empty()) {
      instances = read_image_ids(f.instance);
      if (instances.size() != labels.size()) {
        throw Error("instance map " + f.instance.string() + " is " + std::to_string(instances.cols) + "x" +
                    std::to_string(instances.rows) + ", its label map " + f.label.string() + " is " +
                    std::to_string(labels.cols) + "x" + std::to_string(labels.rows));
      }
    }
    if (options_.preprocess == "none" && labels.size() != rgb.size()) {
      throw Error("label map " + f.label.string() + " and image " + f.image.string() +
                  " differ in size (preprocess none keeps both as stored)");
    }
    SampleRng rng(hash_combine(seed, index));
    const Geometry g = draw_geometry(options_, rgb.size(), rng);
    check_semantic_size(options_.label_nc, g.crop.height, g.crop.width, f.label.string());
    const auto label_t = ids_to_tensor(apply_geometry_ids(labels, g)).unsqueeze(0);
    const auto inst_t = instances.empty() ? torch::Tensor() : ids_to_tensor(apply_geometry_ids(instances, g)).unsqueeze(0);
    Sample s;
    s.a = semantic_input(label_t, inst_t, options_.label_nc, f.label.string())[0];
    s.b = image_to_tensor(apply_geometry_image(rgb, g));
    s.a_path = f.label.string();
    s.b_path = f.image.string();
    return s;
  }

 private:
  std::vector<LabelMapFiles> files_;
  LabelMapOptions options_;
};

// Cityscapes names files <city>_<seq>_<frame>_<kind>.png: the first three parts pair them.
std::string cityscapes_key(const fs::path& path) {
  const std::string name = path.filename().string();
  size_t pos = std::string::npos, start = 0;
  for (int i = 0; i < 3; ++i) {
    pos = name.find('_', start);
    if (pos == std::string::npos) return name;
    start = pos + 1;
  }
  return name.substr(0, pos);
}

std::vector<fs::path> files_under(const fs::path& dir, const std::string& suffix) {
  if (!fs::is_directory(dir)) throw Error("cityscapes layout: no folder " + dir.string());
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && ends_with(e.path().filename().string(), suffix)) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<LabelMapFiles> list_cityscapes(const fs::path& root, std::string split, bool use_instances) {
  if (split == "test") split = "val";  // SPADE's cityscapes_dataset.py: the test phase reads val/
  std::map<std::string, fs::path> images;
  for (const auto& p : files_under(root / "leftImg8bit" / split, "_leftImg8bit.png")) images[cityscapes_key(p)] = p;
  std::vector<LabelMapFiles> files;
  for (const auto& label : files_under(root / "gtFine" / split, "_gtFine_labelIds.png")) {
    LabelMapFiles f;
    f.label = label;
    const auto it = images.find(cityscapes_key(label));
    if (it == images.end()) {
      throw Error("cityscapes layout: no leftImg8bit image for " + label.string() + " under " +
                  (root / "leftImg8bit" / split).string());
    }
    f.image = it->second;
    if (use_instances) {
      const std::string name = label.filename().string();
      f.instance = label.parent_path() /
                   (name.substr(0, name.size() - std::string("_labelIds.png").size()) + "_instanceIds.png");
      if (!fs::exists(f.instance)) throw Error("cityscapes layout: no instance map " + f.instance.string());
    }
    files.push_back(std::move(f));
  }
  if (files.empty()) throw Error("cityscapes layout: no *_gtFine_labelIds.png under " + (root / "gtFine" / split).string());
  return files;
}

std::vector<LabelMapFiles> list_label_folders(const fs::path& root, const std::string& split, bool use_instances) {
  const fs::path label_dir = root / (split + "_labels"), image_dir = root / (split + "_img");
  const fs::path inst_dir = root / (split + "_inst");
  const std::string layout = "label-map layout " + root.string() + "/" + split + "_labels/, " + split + "_img/ (" +
                             split + "_inst/ optional)";
  if (!fs::is_directory(label_dir) || !fs::is_directory(image_dir)) {
    throw Error("no " + layout + " (and no cityscapes gtFine/ + leftImg8bit/)");
  }
  std::map<std::string, fs::path> images, instances;
  for (const auto& p : list_images(image_dir)) images[p.stem().string()] = p;
  const bool with_instances = use_instances && fs::is_directory(inst_dir);
  if (with_instances) {
    for (const auto& p : list_images(inst_dir)) instances[p.stem().string()] = p;
  }
  std::vector<LabelMapFiles> files;
  for (const auto& label : list_images(label_dir)) {
    const std::string stem = label.stem().string();
    LabelMapFiles f;
    f.label = label;
    const auto image = images.find(stem);
    if (image == images.end()) throw Error(layout + ": no image named " + stem + ".* in " + image_dir.string());
    f.image = image->second;
    if (with_instances) {
      const auto inst = instances.find(stem);
      if (inst == instances.end()) throw Error(layout + ": no instance map named " + stem + ".* in " + inst_dir.string());
      f.instance = inst->second;
    }
    files.push_back(std::move(f));
  }
  if (files.empty()) throw Error(layout + ": no label maps in " + label_dir.string());
  return files;
}

cv::Vec3b class_colour(int64_t id) {
  // labels2scenes' classes in cityscapes colours first, then colours spread by a hash.
  static const std::vector<cv::Vec3b> first{{70, 130, 180}, {128, 64, 128}, {70, 70, 70},
                                            {107, 142, 35}, {0, 0, 142},    {220, 20, 60}};
  if (id >= 0 && id < static_cast<int64_t>(first.size())) return first[static_cast<size_t>(id)];
  const uint64_t h = splitmix64(static_cast<uint64_t>(id));
  return {static_cast<uchar>(h & 255), static_cast<uchar>((h >> 8) & 255), static_cast<uchar>((h >> 16) & 255)};
}

}  // namespace

torch::Tensor one_hot_labels(const torch::Tensor& labels, int64_t label_nc, const std::string& what) {
  require(labels.dim() == 3, what + ": expected class ids [N, H, W], got " + c10::str(labels.sizes()));
  require(label_nc >= 1 && label_nc <= kMaxLabelClasses,
          "label_nc must be in [1, " + std::to_string(kMaxLabelClasses) + "], got " + std::to_string(label_nc));
  const auto ids = labels.to(torch::kInt64);
  const auto unlabelled = ids.eq(kUnlabelledId);
  const auto bad = (ids.lt(0) | ids.ge(label_nc)) & ~unlabelled;
  if (bad.any().item<bool>()) {
    const int64_t id = ids.masked_select(bad)[0].item<int64_t>();
    throw Error(what + ": class id " + std::to_string(id) + " is outside [0, " + std::to_string(label_nc) +
                ") (label_nc " + std::to_string(label_nc) + "; 255 marks unlabelled pixels)");
  }
  // An extra slot for 255 is written and dropped: unlabelled pixels get all zeros.
  const auto slots = torch::where(unlabelled, torch::full_like(ids, label_nc), ids);
  auto one_hot = torch::zeros({ids.size(0), label_nc + 1, ids.size(1), ids.size(2)},
                              torch::TensorOptions().dtype(torch::kFloat32).device(ids.device()));
  one_hot.scatter_(1, slots.unsqueeze(1), 1.0);
  return one_hot.narrow(1, 0, label_nc).contiguous();
}

torch::Tensor instance_edges(const torch::Tensor& instances) {
  require(instances.dim() == 3, "instance map: expected ids [N, H, W], got " + c10::str(instances.sizes()));
  const auto t = instances.to(torch::kInt64);
  auto edge = torch::zeros(t.sizes(), torch::TensorOptions().dtype(torch::kBool).device(t.device()));
  // SPADE's get_edges: a pixel is an edge when its left/right or upper/lower neighbour differs.
  const int64_t h = t.size(1), w = t.size(2);
  if (w > 1) {
    const auto dx = t.narrow(2, 1, w - 1).ne(t.narrow(2, 0, w - 1));
    edge.narrow(2, 1, w - 1).logical_or_(dx);
    edge.narrow(2, 0, w - 1).logical_or_(dx);
  }
  if (h > 1) {
    const auto dy = t.narrow(1, 1, h - 1).ne(t.narrow(1, 0, h - 1));
    edge.narrow(1, 1, h - 1).logical_or_(dy);
    edge.narrow(1, 0, h - 1).logical_or_(dy);
  }
  return edge.to(torch::kFloat32).unsqueeze(1);
}

torch::Tensor semantic_input(const torch::Tensor& labels, const torch::Tensor& instances, int64_t label_nc,
                             const std::string& what) {
  if (instances.defined()) {
    require(instances.sizes() == labels.sizes(), what + ": instance map " + c10::str(instances.sizes()) +
                                                     " and label map " + c10::str(labels.sizes()) + " differ in size");
  }
  return torch::cat({one_hot_labels(labels, label_nc, what), instance_edges(instances.defined() ? instances : labels)}, 1);
}

cv::Mat resize_ids_nearest(const cv::Mat& ids, cv::Size size) {
  require(ids.type() == CV_32S, "resize_ids_nearest expects a CV_32S map");
  require(size.width > 0 && size.height > 0, "resize_ids_nearest: empty target size");
  cv::Mat out(size, CV_32S);
  std::vector<int> xs(static_cast<size_t>(size.width));
  for (int x = 0; x < size.width; ++x) {
    xs[static_cast<size_t>(x)] = std::min(ids.cols - 1, static_cast<int>(std::floor((x + 0.5) * ids.cols / size.width)));
  }
  for (int y = 0; y < size.height; ++y) {
    const int sy = std::min(ids.rows - 1, static_cast<int>(std::floor((y + 0.5) * ids.rows / size.height)));
    const int* src = ids.ptr<int>(sy);
    int* dst = out.ptr<int>(y);
    for (int x = 0; x < size.width; ++x) dst[x] = src[xs[static_cast<size_t>(x)]];
  }
  return out;
}

torch::Tensor colorize_semantic_input(const torch::Tensor& input) {
  require(input.dim() == 4 && input.size(1) >= 2, "colorize_semantic_input expects [N, label_nc + 1, H, W]");
  const int64_t label_nc = input.size(1) - 1;
  std::vector<float> table(static_cast<size_t>(label_nc) * 3);
  for (int64_t c = 0; c < label_nc; ++c) {
    const auto colour = class_colour(c);
    for (int k = 0; k < 3; ++k) table[static_cast<size_t>(c * 3 + k)] = colour[k] / 127.5f - 1.0f;
  }
  const auto palette = torch::from_blob(table.data(), {label_nc, 3}).clone().to(input.device());
  const auto x = input.detach().to(torch::kFloat32);
  const auto ids = x.narrow(1, 0, label_nc).argmax(1);               // [N, H, W]
  auto rgb = palette.index({ids}).permute({0, 3, 1, 2});              // [N, 3, H, W]
  const auto edges = x.narrow(1, label_nc, 1);                         // darken edges
  return (rgb * (1 - edges) - edges).contiguous();
}

void validate_label_map_options(const LabelMapOptions& o) {
  require(o.label_nc >= 1 && o.label_nc <= kMaxLabelClasses,
          "label_nc must be in [1, " + std::to_string(kMaxLabelClasses) + "], got " + std::to_string(o.label_nc));
  const std::vector<std::string> valid{"fixed", "resize_and_crop", "none"};
  if (std::find(valid.begin(), valid.end(), o.preprocess) == valid.end()) {
    throw_bad_choice("preprocess (label maps)", o.preprocess, valid);
  }
  require(o.crop_size >= 1 && o.load_size >= 1, "load_size and crop_size must be positive");
  require(o.preprocess != "resize_and_crop" || o.load_size >= o.crop_size,
          "load_size (" + std::to_string(o.load_size) + ") must be >= crop_size (" + std::to_string(o.crop_size) +
              ") for preprocess resize_and_crop");
  require(std::isfinite(o.aspect_ratio) && o.aspect_ratio >= 1.0 / 64 && o.aspect_ratio <= 64,
          "aspect_ratio must be in [1/64, 64], got " + std::to_string(o.aspect_ratio));
}

bool is_cityscapes_layout(const fs::path& root) {
  return fs::is_directory(root / "gtFine") && fs::is_directory(root / "leftImg8bit");
}

std::shared_ptr<Dataset> open_label_maps(const fs::path& root, const std::string& split, const LabelMapOptions& options) {
  validate_label_map_options(options);
  auto files = is_cityscapes_layout(root) ? list_cityscapes(root, split, options.use_instances)
                                          : list_label_folders(root, split, options.use_instances);
  return std::make_shared<LabelMapDataset>(std::move(files), options);
}

torch::Tensor read_semantic_input(const fs::path& label_path, const fs::path& instance_path, int label_nc, cv::Size size) {
  cv::Mat labels = read_image_ids(label_path);
  cv::Mat instances;
  if (!instance_path.empty()) {
    instances = read_image_ids(instance_path);
    require(instances.size() == labels.size(), "instance map " + instance_path.string() + " and label map " +
                                                   label_path.string() + " differ in size");
  }
  if (!size.empty() && size != labels.size()) {
    labels = resize_ids_nearest(labels, size);
    if (!instances.empty()) instances = resize_ids_nearest(instances, size);
  }
  check_semantic_size(label_nc, labels.rows, labels.cols, label_path.string());
  const auto inst = instances.empty() ? torch::Tensor() : ids_to_tensor(instances).unsqueeze(0);
  return semantic_input(ids_to_tensor(labels).unsqueeze(0), inst, label_nc, label_path.string());
}

}  // namespace ganlite::data
