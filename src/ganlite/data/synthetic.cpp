#include "ganlite/data/synthetic.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <thread>

#include "ganlite/data/sample_rng.h"
#include "ganlite/util/atomic_file.h"
#include "ganlite/util/error.h"

namespace ganlite::data {

namespace fs = std::filesystem;

namespace {

constexpr double kPi = 3.14159265358979323846;

uint64_t string_hash(const std::string& s) {
  uint64_t h = 0xCBF29CE484222325ULL;  // FNV-1a
  for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ULL;
  return h;
}

// Stream of one example: depends only on (seed, split, index).
SampleRng example_rng(uint64_t seed, const std::string& split, int64_t index) {
  return SampleRng(hash_combine(hash_combine(seed, string_hash(split)), static_cast<uint64_t>(index)));
}

// Per-pixel noise in [-1, 1] from (key, x, y); textures without any shared state.
double pixel_noise(uint64_t key, int x, int y) {
  const uint64_t h = hash_combine(key, (static_cast<uint64_t>(static_cast<uint32_t>(y)) << 32) | static_cast<uint32_t>(x));
  return static_cast<double>(h >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

uchar clamp_u8(double v) { return static_cast<uchar>(std::clamp(std::lround(v), 0L, 255L)); }

cv::Vec3b scaled(const cv::Vec3b& c, double f) { return {clamp_u8(c[0] * f), clamp_u8(c[1] * f), clamp_u8(c[2] * f)}; }

// ---- shapes ---------------------------------------------------------------------------------

enum ShapeKind { kCircle = 0, kSquare, kTriangle, kRing, kDiamond, kNumShapeKinds };

struct Shape {
  int kind = kCircle;
  double cx = 0, cy = 0, r = 1, angle = 0;
  double nx[3] = {0, 0, 0}, ny[3] = {0, 0, 0};  // triangle side normals, precomputed from angle
};

bool inside_triangle(const Shape& s, double dx, double dy) {
  for (int k = 0; k < 3; ++k) {
    if (dx * s.nx[k] + dy * s.ny[k] > 0.5 * s.r) return false;  // apothem of circumradius r
  }
  return true;
}

bool inside(const Shape& s, double x, double y) {
  const double dx = x - s.cx, dy = y - s.cy;
  if (std::abs(dx) > s.r || std::abs(dy) > s.r) return false;  // every kind fits in its radius
  switch (s.kind) {
    case kCircle:
      return dx * dx + dy * dy <= s.r * s.r;
    case kSquare:
      return std::abs(dx) <= 0.8 * s.r && std::abs(dy) <= 0.8 * s.r;
    case kTriangle:
      return inside_triangle(s, dx, dy);
    case kRing: {
      const double d2 = dx * dx + dy * dy;
      return d2 <= s.r * s.r && d2 >= 0.3 * s.r * s.r;
    }
    case kDiamond:
      return std::abs(dx) + std::abs(dy) <= s.r;
    default:
      return false;
  }
}

// Light from the top left: 1 there, fading to 0.55 at the bottom right of the shape.
double shading(const Shape& s, double x, double y) {
  const double t = std::clamp((1.0 - ((x - s.cx) + (y - s.cy)) / (1.4142 * s.r)) / 2.0, 0.0, 1.0);
  return 0.55 + 0.45 * t;
}

std::vector<Shape> draw_shapes(SampleRng& rng, int size, int min_count, int max_count, double min_r, double max_r,
                               const std::vector<int>& kinds) {
  std::vector<Shape> shapes(static_cast<size_t>(rng.range(min_count, max_count)));
  for (auto& s : shapes) {
    s.kind = kinds[rng.below(kinds.size())];
    s.r = rng.uniform(min_r, max_r) * size;
    s.cx = rng.uniform(0.8 * s.r, size - 0.8 * s.r);
    s.cy = rng.uniform(0.8 * s.r, size - 0.8 * s.r);
    s.angle = rng.uniform(0.0, 2.0 * kPi);
    for (int k = 0; k < 3; ++k) {
      s.nx[k] = std::cos(s.angle + 2.0 * kPi * k / 3);
      s.ny[k] = std::sin(s.angle + 2.0 * kPi * k / 3);
    }
  }
  return shapes;
}

// Index of the topmost shape covering each pixel centre, -1 for background.
cv::Mat shape_index_map(const std::vector<Shape>& shapes, int size) {
  cv::Mat index(size, size, CV_32SC1, cv::Scalar(-1));
  for (int y = 0; y < size; ++y) {
    auto* row = index.ptr<int>(y);
    for (int x = 0; x < size; ++x) {
      for (int k = static_cast<int>(shapes.size()) - 1; k >= 0; --k) {
        if (inside(shapes[static_cast<size_t>(k)], x + 0.5, y + 0.5)) {
          row[x] = k;
          break;
        }
      }
    }
  }
  return index;
}

const cv::Vec3b kShapeColours[kNumShapeKinds] = {
    {215, 40, 40},   // circle: red
    {40, 70, 215},   // square: blue
    {40, 165, 60},   // triangle: green
    {240, 150, 20},  // ring: orange
    {150, 50, 200},  // diamond: purple
};

SyntheticExample render_edges2shapes(int size, SampleRng& rng) {
  const auto shapes = draw_shapes(rng, size, 1, 3, 0.12, 0.25, {kCircle, kSquare, kTriangle, kRing, kDiamond});
  const cv::Mat index = shape_index_map(shapes, size);
  SyntheticExample ex;
  ex.a = cv::Mat(size, size, CV_8UC3, cv::Scalar(255, 255, 255));
  ex.b = cv::Mat(size, size, CV_8UC3, cv::Scalar(235, 235, 225));
  const int reach = std::max(1, size / 96);  // edge thickness grows with the image
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      const int k = index.at<int>(y, x);
      bool edge = false;
      for (int d = 1; d <= reach && !edge; ++d) {
        edge = (x + d < size && index.at<int>(y, x + d) != k) || (x - d >= 0 && index.at<int>(y, x - d) != k) ||
               (y + d < size && index.at<int>(y + d, x) != k) || (y - d >= 0 && index.at<int>(y - d, x) != k);
      }
      if (edge) ex.a.at<cv::Vec3b>(y, x) = cv::Vec3b(20, 20, 20);
      if (k >= 0) {
        const Shape& s = shapes[static_cast<size_t>(k)];
        ex.b.at<cv::Vec3b>(y, x) = scaled(kShapeColours[s.kind], shading(s, x + 0.5, y + 0.5));
      }
    }
  }
  return ex;
}

// Plain objects (a) and their striped versions (b) on the same field background.
// The stripes are a local function of domain A, so that unpaired training can find the one true
// translation (testA_truth): each row of an object starts with a light stripe at its left edge,
// and stripes alternate every `half` pixels from there. (Stripes anchored at the object's centre,
// with a period following its size, were not identifiable from unpaired data: a CycleGAN drew
// stripes of random phase and scored below the identity baseline.)
SyntheticExample render_shapes2stripes(int size, SampleRng& rng) {
  const auto shapes = draw_shapes(rng, size, 1, 2, 0.18, 0.32, {kCircle, kSquare, kTriangle, kDiamond});
  const cv::Mat index = shape_index_map(shapes, size);
  SyntheticExample ex;
  ex.a = cv::Mat(size, size, CV_8UC3);
  ex.b = cv::Mat(size, size, CV_8UC3);
  const cv::Vec3b fill(150, 105, 65);
  const int half = std::max(2, size / 10);
  for (int y = 0; y < size; ++y) {
    // Field: a gentle vertical gradient, identical in both domains.
    const cv::Vec3b field = scaled(cv::Vec3b(110, 165, 80), 0.8 + 0.3 * y / size);
    int run_start = 0;
    for (int x = 0; x < size; ++x) {
      const int k = index.at<int>(y, x);
      if (k < 0) {
        ex.a.at<cv::Vec3b>(y, x) = ex.b.at<cv::Vec3b>(y, x) = field;
        continue;
      }
      if (x == 0 || index.at<int>(y, x - 1) != k) run_start = x;
      const Shape& s = shapes[static_cast<size_t>(k)];
      const double shade = shading(s, x + 0.5, y + 0.5);
      ex.a.at<cv::Vec3b>(y, x) = scaled(fill, shade);
      const bool dark = ((x - run_start) / half) % 2 == 1;
      ex.b.at<cv::Vec3b>(y, x) = dark ? cv::Vec3b(25, 25, 25) : scaled(cv::Vec3b(245, 245, 245), shade);
    }
  }
  return ex;
}

// ---- scenes ---------------------------------------------------------------------------------

enum SceneClass : uchar { kSky = 0, kRoad, kBuilding, kVegetation, kCar, kPerson, kNumSceneClasses };

// Class ids and, as cityscapes' instanceIds, instance ids: a stuff class's pixels hold the class
// id, an object's hold class * 1000 + its index among the objects of its class.
struct SceneMaps {
  cv::Mat labels;     // CV_8UC1
  cv::Mat instances;  // CV_16UC1
  void set(int y, int x, uchar cls, int instance) {
    labels.at<uchar>(y, x) = cls;
    instances.at<uint16_t>(y, x) = static_cast<uint16_t>(instance);
  }
};

void fill_rect(SceneMaps& maps, double x0, double y0, double x1, double y1, uchar cls, int instance) {
  const int size = maps.labels.rows;
  const int ix0 = std::clamp(static_cast<int>(std::floor(x0)), 0, size), ix1 = std::clamp(static_cast<int>(std::ceil(x1)), 0, size);
  const int iy0 = std::clamp(static_cast<int>(std::floor(y0)), 0, size), iy1 = std::clamp(static_cast<int>(std::ceil(y1)), 0, size);
  for (int y = iy0; y < iy1; ++y) {
    for (int x = ix0; x < ix1; ++x) maps.set(y, x, cls, instance);
  }
}

void fill_disc(SceneMaps& maps, double cx, double cy, double r, uchar cls, int instance) {
  const int size = maps.labels.rows;
  for (int y = std::max(0, static_cast<int>(cy - r)); y < std::min(size, static_cast<int>(cy + r) + 1); ++y) {
    for (int x = std::max(0, static_cast<int>(cx - r)); x < std::min(size, static_cast<int>(cx + r) + 1); ++x) {
      const double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
      if (dx * dx + dy * dy <= r * r) maps.set(y, x, cls, instance);
    }
  }
}

SyntheticExample render_labels2scenes(int size, SampleRng& rng) {
  const double S = size;
  SyntheticExample ex;
  SceneMaps maps{cv::Mat(size, size, CV_8UC1), cv::Mat(size, size, CV_16UC1)};
  const double horizon = rng.uniform(0.4, 0.6) * S;
  for (int y = 0; y < size; ++y) {
    const uchar cls = y + 0.5 < horizon ? kSky : kRoad;
    maps.labels.row(y).setTo(cv::Scalar(cls));
    maps.instances.row(y).setTo(cv::Scalar(cls));
  }
  for (int i = 0, n = rng.range(2, 4); i < n; ++i) {
    const double w = rng.uniform(0.15, 0.35) * S, x0 = rng.uniform(-0.1, 0.9) * S;
    fill_rect(maps, x0, rng.uniform(0.08 * S, horizon - 0.05 * S), x0 + w, horizon + 0.04 * S, kBuilding,
              kBuilding * 1000 + i);
  }
  for (int i = 0, n = rng.range(1, 3); i < n; ++i) {
    fill_disc(maps, rng.uniform(0.0, 1.0) * S, horizon - rng.uniform(0.0, 0.1) * S, rng.uniform(0.06, 0.12) * S,
              kVegetation, kVegetation);
  }
  for (int i = 0, n = rng.range(1, 2); i < n; ++i) {
    const double w = rng.uniform(0.15, 0.3) * S, x0 = rng.uniform(-0.05, 0.9) * S;
    const double y1 = rng.uniform(horizon + 0.15 * S, 0.97 * S);
    fill_rect(maps, x0, y1 - 0.4 * w, x0 + w, y1, kCar, kCar * 1000 + i);
  }
  for (int i = 0, n = rng.range(0, 2); i < n; ++i) {
    const double h = rng.uniform(0.12, 0.2) * S, w = std::max(1.0, 0.3 * h), x0 = rng.uniform(0.02, 0.95) * S;
    const double y1 = rng.uniform(horizon + 0.1 * S, 0.98 * S);
    fill_rect(maps, x0, y1 - 0.8 * h, x0 + w, y1, kPerson, kPerson * 1000 + i);
    fill_disc(maps, x0 + w / 2, y1 - 0.85 * h, 0.6 * w, kPerson, kPerson * 1000 + i);
  }
  ex.labels = maps.labels;
  ex.instances = maps.instances;

  const auto& palette = scene_class_palette();
  const uint64_t noise_key = rng.next();
  const int window = std::max(4, size / 16);
  ex.a = cv::Mat(size, size, CV_8UC3);
  ex.b = cv::Mat(size, size, CV_8UC3);
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      const uchar cls = ex.labels.at<uchar>(y, x);
      ex.a.at<cv::Vec3b>(y, x) = palette[cls];
      const double n = pixel_noise(noise_key, x, y);
      cv::Vec3b c;
      switch (cls) {
        case kSky: {
          const double t = std::clamp(y / std::max(1.0, horizon), 0.0, 1.0);  // brighter towards the horizon
          c = cv::Vec3b(clamp_u8(120 + 80 * t + 3 * n), clamp_u8(170 + 50 * t + 3 * n), clamp_u8(230 + 10 * t + 3 * n));
          break;
        }
        case kRoad:
          c = scaled(cv::Vec3b(92, 92, 98), 1.0 + 0.12 * n);
          break;
        case kBuilding: {
          const bool pane = (x % window) >= window / 2 && (y % window) >= window / 2;  // window grid
          c = pane ? cv::Vec3b(60, 75, 100) : scaled(cv::Vec3b(160, 125, 100), 1.0 + 0.06 * n);
          break;
        }
        case kVegetation:
          c = scaled(cv::Vec3b(60, 125, 40), 1.0 + 0.3 * n);
          break;
        case kCar:
          c = scaled(cv::Vec3b(45, 55, 165), 1.0 + 0.05 * n);
          break;
        default:  // person
          c = scaled(cv::Vec3b(205, 70, 75), 1.0 + 0.08 * n);
          break;
      }
      ex.b.at<cv::Vec3b>(y, x) = c;
    }
  }
  return ex;
}

// ---- writing --------------------------------------------------------------------------------

std::string format_index(int64_t index) {
  char name[32];
  std::snprintf(name, sizeof name, "%06lld.png", static_cast<long long>(index));
  return name;
}

// Plain writes are enough inside the staging folder: it only becomes visible, whole, through
// the final rename, and skipping a per-file fsync keeps generation fast.
void write_png(const fs::path& path, const cv::Mat& image_rgb_or_gray) {
  cv::Mat encoded_input = image_rgb_or_gray;
  if (image_rgb_or_gray.channels() == 3) cv::cvtColor(image_rgb_or_gray, encoded_input, cv::COLOR_RGB2BGR);
  std::vector<unsigned char> buffer;
  if (!cv::imencode(".png", encoded_input, buffer, {cv::IMWRITE_PNG_COMPRESSION, 3})) {
    throw Error("cannot encode " + path.string());
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(buffer.data()), static_cast<std::streamsize>(buffer.size()));
  out.close();
  if (!out) throw Error("cannot write " + path.string());
}

cv::Mat side_by_side(const cv::Mat& a, const cv::Mat& b) {
  cv::Mat ab;
  cv::hconcat(a, b, ab);
  return ab;
}

struct Job {
  std::string split;
  int64_t index;
};

// Renders one job and writes its files into `root`; returns the number of files written.
int write_job(const fs::path& root, const SyntheticOptions& o, const Job& job) {
  const SyntheticExample ex = render_synthetic(o.kind, o.size, o.seed, job.split, job.index);
  const std::string name = format_index(job.index);
  if (o.kind == "shapes2stripes") {
    if (job.split == "trainA") write_png(root / "trainA" / name, ex.a);
    if (job.split == "trainB") write_png(root / "trainB" / name, ex.b);
    if (job.split == "testB") write_png(root / "testB" / name, ex.b);
    if (job.split == "testA") {
      write_png(root / "testA" / name, ex.a);
      write_png(root / "testA_truth" / name, ex.b);
      return 2;
    }
    return 1;
  }
  write_png(root / job.split / name, side_by_side(ex.a, ex.b));
  if (o.kind == "labels2scenes") {
    // The label-map folder layout (data/label_maps.h): class ids, instance ids, images.
    write_png(root / (job.split + "_labels") / name, ex.labels);
    write_png(root / (job.split + "_inst") / name, ex.instances);
    write_png(root / (job.split + "_img") / name, ex.b);
    return 4;
  }
  return 1;
}

std::vector<std::string> subfolders(const std::string& kind) {
  if (kind == "shapes2stripes") return {"trainA", "trainB", "testA", "testB", "testA_truth"};
  if (kind == "labels2scenes") {
    return {"train", "test", "train_labels", "test_labels", "train_inst", "test_inst", "train_img", "test_img"};
  }
  return {"train", "test"};
}

std::string layout_text(const std::string& kind) {
  if (kind == "shapes2stripes") return "unaligned: trainA/ trainB/ testA/ testB/, testA_truth/ = true translation of testA";
  if (kind == "labels2scenes") {
    return "aligned: train/ test/ (A|B side by side); label maps: <split>_labels/ class ids, <split>_inst/ instance "
           "ids (16-bit), <split>_img/ images";
  }
  return "aligned: train/ test/ (A|B side by side)";
}

// Moves the finished staging folder to `target`, replacing an old one only when allowed.
void move_into_place(const fs::path& staging, const fs::path& target, bool force) {
  std::error_code ec;
  if (fs::exists(target, ec) && !fs::is_empty(target, ec)) {
    if (!force) throw UsageError("output folder " + target.string() + " is not empty (use --force to replace it)");
    const fs::path old = target.parent_path() / ("." + target.filename().string() + ".old-" + std::to_string(::getpid()));
    fs::rename(target, old);
    fs::rename(staging, target);
    fs::remove_all(old, ec);
    return;
  }
  if (fs::exists(target, ec)) fs::remove(target, ec);  // an empty folder
  fs::rename(staging, target);
}

}  // namespace

const std::vector<std::string>& synthetic_kinds() {
  static const std::vector<std::string> kinds{"edges2shapes", "shapes2stripes", "labels2scenes"};
  return kinds;
}

const std::vector<std::string>& scene_class_names() {
  static const std::vector<std::string> names{"sky", "road", "building", "vegetation", "car", "person"};
  return names;
}

const std::vector<cv::Vec3b>& scene_class_palette() {
  // Cityscapes colours of the same classes.
  static const std::vector<cv::Vec3b> palette{{70, 130, 180}, {128, 64, 128}, {70, 70, 70},
                                              {107, 142, 35}, {0, 0, 142},    {220, 20, 60}};
  return palette;
}

SyntheticExample render_synthetic(const std::string& kind, int size, uint64_t seed, const std::string& split,
                                  int64_t index) {
  require(size >= 16, "synthetic image size must be >= 16, got " + std::to_string(size));
  SampleRng rng = example_rng(seed, split, index);
  if (kind == "edges2shapes") return render_edges2shapes(size, rng);
  if (kind == "shapes2stripes") return render_shapes2stripes(size, rng);
  if (kind == "labels2scenes") return render_labels2scenes(size, rng);
  throw_bad_choice("dataset kind", kind, synthetic_kinds());
}

SyntheticSummary make_synthetic_dataset(const fs::path& out, const SyntheticOptions& o,
                                        const std::function<void(int64_t, int64_t)>& progress) {
  const auto& kinds = synthetic_kinds();
  if (std::find(kinds.begin(), kinds.end(), o.kind) == kinds.end()) throw_bad_choice("dataset kind", o.kind, kinds);
  require(o.count >= 1, "--count must be >= 1, got " + std::to_string(o.count));
  require(o.test_count == -1 || o.test_count >= 1, "--test-count must be >= 1, got " + std::to_string(o.test_count));
  require(o.size >= 16 && o.size <= 4096, "--size must be in [16, 4096], got " + std::to_string(o.size));
  require(o.threads >= 0, "--threads must be >= 0, got " + std::to_string(o.threads));
  require(!out.empty(), "--out must name a folder");

  fs::path target = fs::absolute(out).lexically_normal();
  if (!target.has_filename()) target = target.parent_path();  // "dir/"
  std::error_code ec;
  if (fs::exists(target, ec) && !fs::is_directory(target, ec)) {
    throw Error("output " + target.string() + " exists and is not a folder");
  }
  if (fs::exists(target, ec) && !fs::is_empty(target, ec) && !o.force) {
    throw UsageError("output folder " + target.string() + " is not empty (use --force to replace it)");
  }

  SyntheticSummary summary;
  summary.kind = o.kind;
  summary.size = o.size;
  summary.train_count = o.count;
  summary.test_count = o.test_count >= 1 ? o.test_count : std::max(1, o.count / 4);
  summary.seed = o.seed;

  std::vector<Job> jobs;
  const bool unpaired = o.kind == "shapes2stripes";
  for (const std::string split : {"train", "test"}) {
    const int n = split == "train" ? summary.train_count : summary.test_count;
    for (const std::string& domain : unpaired ? std::vector<std::string>{"A", "B"} : std::vector<std::string>{""}) {
      for (int64_t i = 0; i < n; ++i) jobs.push_back({split + domain, i});
    }
  }

  const fs::path staging = target.parent_path() / ("." + target.filename().string() + ".partial-" + std::to_string(::getpid()));
  fs::remove_all(staging, ec);
  try {
    fs::create_directories(staging);
    for (const auto& sub : subfolders(o.kind)) fs::create_directories(staging / sub);
  } catch (const fs::filesystem_error& e) {
    throw Error("cannot create output folder " + staging.string() + ": " + e.code().message());
  }

  const auto start = std::chrono::steady_clock::now();
  std::atomic<size_t> next{0};
  std::atomic<int64_t> done{0}, files{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  const size_t n_threads = std::min<size_t>(
      jobs.size(), o.threads > 0 ? static_cast<size_t>(o.threads) : std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::thread> threads;
  for (size_t t = 0; t < n_threads; ++t) {
    threads.emplace_back([&] {
      for (size_t i = next++; i < jobs.size() && !failed; i = next++) {
        try {
          files += write_job(staging, o, jobs[i]);
          ++done;
        } catch (...) {
          std::lock_guard<std::mutex> lock(error_mutex);
          if (!error) error = std::current_exception();
          failed = true;
        }
      }
    });
  }
  const auto total = static_cast<int64_t>(jobs.size());
  while (done < total && !failed) {
    if (progress) progress(done, total);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (auto& th : threads) th.join();
  if (error) {
    fs::remove_all(staging, ec);
    std::rethrow_exception(error);
  }
  if (progress) progress(done, total);
  summary.files_written = files;

  try {
    nlohmann::json meta{{"generator", "ganlite make-dataset"},
                        {"kind", summary.kind},
                        {"size", summary.size},
                        {"train_count", summary.train_count},
                        {"test_count", summary.test_count},
                        {"seed", summary.seed},
                        {"layout", layout_text(o.kind)},
                        {"files", summary.files_written}};
    if (o.kind == "labels2scenes") {
      nlohmann::json classes = nlohmann::json::array();
      for (size_t c = 0; c < scene_class_names().size(); ++c) {
        const auto& p = scene_class_palette()[c];
        classes.push_back({{"id", c}, {"name", scene_class_names()[c]}, {"color", {p[0], p[1], p[2]}}});
      }
      meta["classes"] = classes;
    }
    write_file_atomic(staging / "dataset.json", meta.dump(2) + "\n");
    move_into_place(staging, target, o.force);
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(staging, ec);
    throw Error("cannot move the dataset into " + target.string() + ": " + e.code().message());
  } catch (...) {
    fs::remove_all(staging, ec);
    throw;
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace ganlite::data
