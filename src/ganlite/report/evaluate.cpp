#include "ganlite/nn/translate.h"
#include "ganlite/report/evaluate.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "ganlite/data/image_io.h"
#include "ganlite/data/label_maps.h"
#include "ganlite/io/checkpoint.h"
#include "ganlite/metrics/image_quality.h"
#include "ganlite/metrics/inception.h"
#include "ganlite/metrics/miou.h"
#include "ganlite/nn/generator_family.h"
#include "ganlite/nn/inference.h"
#include "ganlite/nn/profiler.h"
#include "ganlite/train/train_config.h"
#include "ganlite/train/task_registry.h"
#include "ganlite/train/validation.h"
#include "ganlite/util/error.h"
#include "ganlite/util/progress.h"

namespace ganlite::report {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

json optional_json(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

json kid_json(const metrics::KidResult& k) {
  return {{"mean", k.mean}, {"std", k.std}, {"subsets", k.subsets}, {"subset_size", k.subset_size}};
}

// uint8 [1, 3, H, W] or [3, H, W] -> HxWx3 RGB matrix (owning its data).
cv::Mat to_mat(const torch::Tensor& image_u8) {
  const auto hwc = image_u8.squeeze(0).permute({1, 2, 0}).contiguous().cpu();
  return cv::Mat(static_cast<int>(hwc.size(0)), static_cast<int>(hwc.size(1)), CV_8UC3, hwc.data_ptr<uint8_t>())
      .clone();
}

void validate_options(const EvalOptions& o) {
  train::task_kind(o.task);  // names the registered tasks for an unknown one
  if (o.direction != "AtoB" && o.direction != "BtoA") throw_bad_choice("direction", o.direction, {"AtoB", "BtoA"});
  require(!o.data.empty(), "no data folder given");
  require(o.max_images >= 0, "max images must be >= 0, got " + std::to_string(o.max_images));
  require(o.size == 0 || o.size >= 16, "evaluation size must be >= 16 (SSIM's window), got " + std::to_string(o.size));
  require(o.latency_size >= 4, "latency size must be >= 4, got " + std::to_string(o.latency_size));
  require(o.profile_size >= 4, "profile size must be >= 4, got " + std::to_string(o.profile_size));
  require(o.grid_images >= 0, "grid images must be >= 0, got " + std::to_string(o.grid_images));
  require(o.inception_batch >= 1, "inception batch must be >= 1, got " + std::to_string(o.inception_batch));
  require(o.kid_subsets >= 1, "KID subsets must be >= 1, got " + std::to_string(o.kid_subsets));
  require(o.kid_subset_size >= 2, "KID subset size must be >= 2, got " + std::to_string(o.kid_subset_size));
  require(o.real_stats.empty() || !o.inception.empty(),
          "real statistics '" + o.real_stats + "' need Inception weights (--inception) to compute FID");
  require(o.segmenter.empty() || train::task_kind(o.task).label_maps,
          "--segmenter scores generators of label maps (--task spade); task '" + o.task + "' has none");
  require(o.miou_classes >= 0, "mIoU classes must be >= 0, got " + std::to_string(o.miou_classes));
  for (double v : o.miou_std) require(v > 0, "mIoU std values must be > 0");
}

// Label-map tasks: the test split's label maps resized ('fixed', as SPADE) to height x width.
train::ValidationSet open_label_test_set(const EvalOptions& o, int label_nc, int64_t height, int64_t width) {
  if (!fs::is_directory(o.data)) throw Error("data folder '" + o.data + "' does not exist");
  train::TrainConfig c;
  c.task = o.task;
  c.dataroot = o.data;
  c.generator.label_nc = label_nc;
  c.preprocess = "fixed";
  c.crop_size = static_cast<int>(width);
  c.load_size = static_cast<int>(width);
  c.aspect_ratio = static_cast<double>(width) / static_cast<double>(height);
  std::string why;
  auto set = train::open_validation_set(c, &why);
  if (!set) throw Error("no test split to evaluate on: " + why);
  if (set->inputs->size() == 0) throw Error("the test split of '" + o.data + "' has no label maps");
  return *set;
}

// The evaluation size of a label-map generator: its training resolution, or `size` wide at its aspect.
std::pair<int64_t, int64_t> label_eval_size(const nn::ArchConfig& c, int size) {
  const auto& family = nn::generator_family(c.arch);
  auto [h, w] = family.default_profile_size ? family.default_profile_size(c)
                                            : std::pair<int64_t, int64_t>{c.input_height, c.input_width};
  if (h <= 0 || w <= 0) {
    require(size > 0, c.arch + " generator has no training resolution (input_height / input_width): give --size");
    h = w = size;
  }
  if (size > 0) {
    h = std::max<int64_t>(16, static_cast<int64_t>(std::llround(static_cast<double>(size) * h / w)));
    w = size;
  }
  require(h >= 16 && w >= 16, "evaluation size must be >= 16 (SSIM's window), got " + std::to_string(h) + "x" +
                                  std::to_string(w));
  return {h, w};
}

// Class ids of a semantic input [label_nc + 1, H, W]: the one-hot channel set, 255 where none is.
torch::Tensor class_ids(const torch::Tensor& semantic) {
  const auto onehot = semantic.narrow(0, 0, semantic.size(0) - 1);
  return onehot.argmax(0).masked_fill(onehot.sum(0).eq(0), 255).cpu();
}

// Batch-1 latency of two label-map generators at height x width through the fast path, in
// interleaved rounds (metrics::measure_generator_latencies' protocol for rectangles), on a one-hot input.
std::vector<metrics::LatencyResult> label_map_latencies(nn::GeneratorImpl& teacher, nn::GeneratorImpl& student,
                                                        std::pair<int64_t, int64_t> hw, const torch::Device& device,
                                                        const metrics::LatencyOptions& options) {
  const int64_t classes = teacher.config().input_nc - 1;
  const auto ids = torch::randint(0, classes, {1, 1, hw.first, hw.second}, torch::TensorOptions().dtype(torch::kLong));
  auto input = torch::zeros({1, classes + 1, hw.first, hw.second}).scatter_(1, ids, 1.0).to(device);
  const nn::InferenceRunner t(teacher), s(student);
  const int64_t tm = nn::size_multiple(teacher.config()), sm = nn::size_multiple(student.config());
  const auto t_forward = [&](const torch::Tensor& x) { return t.forward(x); };
  const auto s_forward = [&](const torch::Tensor& x) { return s.forward(x); };
  return metrics::measure_latency_interleaved(
      {[&] { (void)nn::translate_padded(t_forward, input, tm); }, [&] { (void)nn::translate_padded(s_forward, input, sm); }},
      device, 1, options);
}

train::ValidationSet open_test_set(const EvalOptions& o, int size) {
  if (!fs::is_directory(o.data)) throw Error("data folder '" + o.data + "' does not exist");
  train::TrainConfig c;
  c.task = o.task;
  c.dataroot = o.data;
  c.direction = o.direction;
  c.crop_size = size;
  c.load_size = size;
  std::string why;
  auto set = train::open_validation_set(c, &why);
  if (!set) throw Error("no test split to evaluate on: " + why);
  if (set->inputs->size() == 0) throw Error("the test split of '" + o.data + "' has no images");
  return *set;
}

// The height of the first test input: A|B files are S high.
int native_size(const train::ValidationSet& set) {
  const auto first = set.inputs->get(0, 0);
  return data::read_image_rgb(first.a_path).rows;
}

// Features of uint8 images gathered one at a time, run through Inception in batches.
class FeatureStream {
 public:
  FeatureStream(metrics::FidInceptionV3* net, int64_t batch) : net_(net), batch_(batch) {}
  void add(const torch::Tensor& image_u8) {
    if (!net_) return;
    pending_.push_back(image_u8.squeeze(0));
    if (static_cast<int64_t>(pending_.size()) >= batch_) flush();
  }
  torch::Tensor features() {
    flush();
    return chunks_.empty() ? torch::Tensor() : torch::cat(chunks_);
  }

 private:
  void flush() {
    if (pending_.empty()) return;
    chunks_.push_back(metrics::inception_features(*net_, torch::stack(pending_), batch_));
    pending_.clear();
  }
  metrics::FidInceptionV3* net_;
  int64_t batch_;
  std::vector<torch::Tensor> pending_;
  std::vector<torch::Tensor> chunks_;
};

ModelEvaluation cost_of(nn::GeneratorImpl& g, const fs::path& path, std::pair<int64_t, int64_t> size,
                        std::pair<int64_t, int64_t> profile_size, const torch::Device& device) {
  ModelEvaluation m;
  m.path = path.string();
  m.arch = g.config();
  m.params = nn::count_parameters(g);
  // Profiled through translate_padded: the MACs of what actually runs at this size.
  const auto profile_at = [&](std::pair<int64_t, int64_t> hw) {
    const auto zeros = torch::zeros({1, g.config().input_nc, hw.first, hw.second}, torch::TensorOptions().device(device));
    return nn::profile_forward(g, [&] { (void)nn::translate_padded(g, zeros); }).macs;
  };
  m.macs = profile_at(size);
  m.macs_profile = profile_at(profile_size);
  return m;
}

void check_generator(const nn::GeneratorImpl& g, const fs::path& path, bool label_maps) {
  if (label_maps) {
    if (g.config().label_nc <= 0 || g.config().input_nc != g.config().label_nc + 1 || g.config().output_nc != 3) {
      throw Error(path.string() + ": a label-map task needs a generator of label_nc + 1 channels to RGB, this one maps " +
                  std::to_string(g.config().input_nc) + " -> " + std::to_string(g.config().output_nc) +
                  " channels (label_nc " + std::to_string(g.config().label_nc) + ")");
    }
    return;
  }
  if (g.config().input_nc != 3 || g.config().output_nc != 3) {
    throw Error(path.string() + ": evaluation needs an RGB -> RGB generator, this one maps " +
                std::to_string(g.config().input_nc) + " -> " + std::to_string(g.config().output_nc) + " channels");
  }
}

}  // namespace

std::optional<double> ratio(double a, double b) {
  if (!(b > 0)) return std::nullopt;
  return a / b;
}

json ModelEvaluation::to_json() const {
  json j{{"path", path},
         {"arch", arch.to_json()},
         {"params", params},
         {"macs", macs},
         {"macs_profile", macs_profile},
         {"latency_ms", latency.to_json()},
         {"latency_ms_at_latency_size", latency_at_size.to_json()},
         {"psnr", psnr},
         {"ssim", ssim}};
  if (psnr_vs_teacher) j["psnr_vs_teacher"] = *psnr_vs_teacher;
  if (ssim_vs_teacher) j["ssim_vs_teacher"] = *ssim_vs_teacher;
  if (fid) j["fid"] = *fid;
  if (kid) j["kid"] = kid_json(*kid);
  if (miou) j["miou"] = *miou;
  return j;
}

json RunCurves::to_json() const {
  json series = json::array();
  for (const auto& s : losses) series.push_back({{"name", s.name}, {"points", s.x.size()}});
  json val = json::array();
  for (const auto& s : validation) val.push_back({{"name", s.name}, {"points", s.x.size()}});
  return {{"run_dir", run_dir}, {"note", note}, {"losses", series}, {"validation", val}};
}

json EvalReport::to_json() const {
  json j;
  j["format"] = "ganlite-eval-report";
  j["version"] = 1;
  j["data"] = {{"root", options.data}, {"task", options.task}, {"direction", options.direction},
               {"split", split},       {"count", count},        {"size", size}};
  if (height > 0) {  // label-map tasks: size is the width
    j["data"]["height"] = height;
    j["data"]["width"] = size;
  }
  j["device"] = device;
  j["threads"] = threads;
  j["profile_size"] = options.profile_size;
  j["latency_size"] = options.latency_size;
  j["teacher"] = teacher.to_json();
  j["student"] = student.to_json();
  j["ratios"] = {
      {"macs", optional_json(ratio(static_cast<double>(teacher.macs), static_cast<double>(student.macs)))},
      {"macs_profile",
       optional_json(ratio(static_cast<double>(teacher.macs_profile), static_cast<double>(student.macs_profile)))},
      {"params", optional_json(ratio(static_cast<double>(teacher.params), static_cast<double>(student.params)))},
      {"latency", optional_json(ratio(teacher.latency.median_ms, student.latency.median_ms))},
      {"latency_at_latency_size",
       optional_json(ratio(teacher.latency_at_size.median_ms, student.latency_at_size.median_ms))}};
  if (teacher.fid && student.fid) {
    j["fid"] = {{"teacher", *teacher.fid}, {"student", *student.fid}, {"real", real_source}};
  }
  if (teacher.miou && student.miou) {
    j["miou"] = {{"teacher", *teacher.miou}, {"student", *student.miou}, {"truth", optional_json(truth_miou)},
                 {"segmenter", options.segmenter}};
  }
  if (teacher.kid && student.kid) {
    j["kid"] = {{"teacher", kid_json(*teacher.kid)}, {"student", kid_json(*student.kid)}};
  }
  j["curves"] = {{"teacher", teacher_curves.to_json()}, {"student", student_curves.to_json()}};
  return j;
}

RunCurves load_run_curves(const fs::path& checkpoint, const std::string& run_dir) {
  RunCurves curves;
  fs::path dir = run_dir;
  if (dir.empty()) {
    const fs::path parent = checkpoint.parent_path();
    if (parent.filename() != "checkpoints") {
      curves.note = "'" + checkpoint.string() + "' is not in a run's checkpoints/ folder; no training logs found";
      return curves;
    }
    dir = parent.parent_path();
  }
  curves.run_dir = dir.string();
  const auto read_lines = [](const fs::path& path, const std::function<void(const json&)>& each) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      const auto j = json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_object()) each(j);  // torn or foreign lines are skipped
    }
  };
  const fs::path metrics_path = dir / "metrics.jsonl";
  if (fs::is_regular_file(metrics_path)) {
    static const std::vector<std::string> kNotLosses{"step", "epoch", "epoch_iter", "lr", "wall_seconds"};
    std::map<std::string, size_t> index;
    int64_t line_no = 0;
    read_lines(metrics_path, [&](const json& j) {
      const double step = j.contains("step") && j["step"].is_number() ? j["step"].get<double>()
                                                                         : static_cast<double>(line_no);
      ++line_no;
      for (const auto& [key, value] : j.items()) {
        if (!value.is_number() ||
            std::find(kNotLosses.begin(), kNotLosses.end(), key) != kNotLosses.end()) {
          continue;
        }
        auto it = index.find(key);
        if (it == index.end()) {
          it = index.emplace(key, curves.losses.size()).first;
          curves.losses.push_back({key, {}, {}});
        }
        curves.losses[it->second].x.push_back(step);
        curves.losses[it->second].y.push_back(value.get<double>());
      }
    });
    if (curves.losses.empty()) curves.note = "'" + metrics_path.string() + "' holds no loss values";
  } else {
    curves.note = "no training log '" + metrics_path.string() + "'";
  }
  const fs::path val_path = dir / "val.jsonl";
  if (fs::is_regular_file(val_path)) {
    PlotSeries psnr{"PSNR", {}, {}};
    read_lines(val_path, [&](const json& j) {
      if (j.contains("epoch") && j["epoch"].is_number() && j.contains("psnr") && j["psnr"].is_number()) {
        psnr.x.push_back(j["epoch"].get<double>() + 1);  // epochs are 0-based in the log
        psnr.y.push_back(j["psnr"].get<double>());
      }
    });
    if (!psnr.x.empty()) curves.validation.push_back(std::move(psnr));
  }
  return curves;
}

EvalReport evaluate_teacher_student(const fs::path& teacher_path, const fs::path& student_path,
                                    const EvalOptions& o, const torch::Device& device) {
  validate_options(o);
  EvalReport report;
  report.options = o;
  report.device = device.str();
  report.threads = torch::get_num_threads();

  const bool label_maps = train::task_kind(o.task).label_maps;
  // Small inputs first, so a bad path fails before minutes of work.
  std::optional<train::ValidationSet> set;
  if (!label_maps) {
    set = open_test_set(o, o.size > 0 ? o.size : 256);
    report.size = o.size > 0 ? o.size : native_size(*set);
    require(report.size >= 16, "test images of '" + o.data + "' are " + std::to_string(report.size) +
                                   " pixels high; give --size >= 16");
    if (o.size == 0) set = open_test_set(o, static_cast<int>(report.size));
  }
  std::optional<metrics::FeatureStats> real_stats;
  if (!o.real_stats.empty()) {
    real_stats = metrics::load_statistics(o.real_stats);
    report.real_source = "statistics " + o.real_stats;
  }
  auto teacher = io::load_generator(teacher_path, device);
  auto student = io::load_generator(student_path, device);
  check_generator(*teacher, teacher_path, label_maps);
  check_generator(*student, student_path, label_maps);
  teacher->eval();
  student->eval();
  // Label maps: at the teacher's training resolution (both read the same label maps).
  std::pair<int64_t, int64_t> size{report.size, report.size}, profile_size{o.profile_size, o.profile_size},
      latency_size{o.latency_size, o.latency_size};
  if (label_maps) {
    if (student->config().label_nc != teacher->config().label_nc) {
      throw Error(student_path.string() + " takes " + std::to_string(student->config().label_nc) + " classes, " +
                  teacher_path.string() + " " + std::to_string(teacher->config().label_nc));
    }
    size = label_eval_size(teacher->config(), o.size);
    report.size = size.second;
    report.height = size.first;
    set = open_label_test_set(o, teacher->config().label_nc, size.first, size.second);
    // The papers' GauGAN figures are at 256x512 (methods.md 5): profile_size x 2 profile_size.
    profile_size = {o.profile_size, 2 * o.profile_size};
    latency_size = {o.latency_size, 2 * o.latency_size};
  }
  report.split = set->description;
  std::optional<metrics::FidInceptionV3> inception;
  if (!o.inception.empty()) inception = metrics::load_fid_inception(o.inception, device);
  std::optional<metrics::SegmenterScorer> teacher_seg, student_seg, truth_seg;
  if (!o.segmenter.empty()) {
    metrics::MiouOptions mo;
    mo.classes = o.miou_classes > 0 ? o.miou_classes : teacher->config().label_nc;
    mo.mean = o.miou_mean;
    mo.std = o.miou_std;
    teacher_seg.emplace(o.segmenter, mo, device);
    student_seg.emplace(o.segmenter, mo, device);
    truth_seg.emplace(o.segmenter, mo, device);
  }

  report.teacher = cost_of(*teacher, teacher_path, size, profile_size, device);
  report.student = cost_of(*student, student_path, size, profile_size, device);

  size_t n = set->inputs->size();
  if (o.max_images > 0) n = std::min(n, static_cast<size_t>(o.max_images));
  auto* net = inception ? &*inception : nullptr;
  FeatureStream real_features(real_stats ? nullptr : net, o.inception_batch);
  FeatureStream teacher_features(net, o.inception_batch), student_features(net, o.inception_batch);
  double t_psnr = 0, t_ssim = 0, s_psnr = 0, s_ssim = 0, st_psnr = 0, st_ssim = 0;
  {
    ProgressBar bar(static_cast<int64_t>(n), "eval");
    torch::NoGradGuard no_grad;
    // Outputs through the fast inference path (fp32; matches the eval-mode module to ~1e-5).
    const nn::InferenceRunner teacher_runner(*teacher), student_runner(*student);
    const int64_t t_multiple = nn::size_multiple(teacher->config()), s_multiple = nn::size_multiple(student->config());
    const auto t_forward = [&](const torch::Tensor& x) { return teacher_runner.forward(x); };
    const auto s_forward = [&](const torch::Tensor& x) { return student_runner.forward(x); };
    for (size_t i = 0; i < n; ++i) {
      const auto sample = set->inputs->get(i, 0);
      torch::Tensor truth = sample.b;
      if (set->truths) {
        const auto t = set->truths->get(i, 0);
        if (fs::path(t.a_path).filename() != fs::path(sample.a_path).filename()) {
          throw Error("truth '" + t.a_path + "' does not match input '" + sample.a_path + "'");
        }
        truth = t.a;
      }
      const auto input = sample.a.unsqueeze(0).to(device);
      const auto y = metrics::quantize_to_uint8(truth.unsqueeze(0));
      const auto t_out = metrics::quantize_to_uint8(nn::translate_padded(t_forward, input, t_multiple).cpu());
      const auto s_out = metrics::quantize_to_uint8(nn::translate_padded(s_forward, input, s_multiple).cpu());
      t_psnr += metrics::capped_psnr(t_out, y);
      t_ssim += metrics::ssim(t_out, y).item<double>();
      s_psnr += metrics::capped_psnr(s_out, y);
      s_ssim += metrics::ssim(s_out, y).item<double>();
      st_psnr += metrics::capped_psnr(s_out, t_out);
      st_ssim += metrics::ssim(s_out, t_out).item<double>();
      real_features.add(y);
      teacher_features.add(t_out);
      student_features.add(s_out);
      if (teacher_seg) {
        const auto ids = class_ids(sample.a);
        teacher_seg->add(t_out, ids, sample.a_path + " (teacher)");
        student_seg->add(s_out, ids, sample.a_path + " (student)");
        truth_seg->add(y, ids, sample.b_path);
      }
      if (static_cast<int>(report.grid.size()) < o.grid_images) {
        const auto shown = label_maps ? data::colorize_semantic_input(sample.a.unsqueeze(0)) : sample.a.unsqueeze(0);
        report.grid.push_back({fs::path(sample.a_path).filename().string(), to_mat(metrics::quantize_to_uint8(shown)),
                               to_mat(t_out), to_mat(s_out), to_mat(y)});
      }
      ++report.count;
      bar.update(report.count);
    }
    bar.finish();
  }
  const double count = static_cast<double>(report.count);
  report.teacher.psnr = t_psnr / count;
  report.teacher.ssim = t_ssim / count;
  report.student.psnr = s_psnr / count;
  report.student.ssim = s_ssim / count;
  report.student.psnr_vs_teacher = st_psnr / count;
  report.student.ssim_vs_teacher = st_ssim / count;
  if (teacher_seg) {
    report.teacher.miou = teacher_seg->result().miou;
    report.student.miou = student_seg->result().miou;
    report.truth_miou = truth_seg->result().miou;
  }

  if (inception) {
    if (report.count < 2) {
      throw Error("FID needs at least 2 test images, '" + o.data + "' gave " + std::to_string(report.count));
    }
    const auto tf = teacher_features.features(), sf = student_features.features();
    torch::Tensor rf;
    if (!real_stats) {
      rf = real_features.features();
      real_stats = metrics::compute_statistics(rf);
      report.real_source = std::to_string(report.count) + " truth images (" + report.split + ")";
    }
    report.teacher.fid = metrics::frechet_distance(*real_stats, metrics::compute_statistics(tf));
    report.student.fid = metrics::frechet_distance(*real_stats, metrics::compute_statistics(sf));
    if (rf.defined()) {
      report.teacher.kid = metrics::kernel_inception_distance(tf, rf, o.kid_subsets, o.kid_subset_size);
      report.student.kid = metrics::kernel_inception_distance(sf, rf, o.kid_subsets, o.kid_subset_size);
    }
  }

  {
    // Teacher and student in interleaved rounds, at each size, so their ratio is fair.
    ProgressBar bar(2, "latency");
    const auto measure = [&](std::pair<int64_t, int64_t> hw) {
      if (!label_maps) {
        return metrics::measure_generator_latencies({teacher.get(), student.get()}, hw.first, 1, device, o.latency);
      }
      return label_map_latencies(*teacher, *student, hw, device, o.latency);
    };
    auto at_size = measure(size);
    report.teacher.latency = at_size[0];
    report.student.latency = at_size[1];
    bar.advance();
    if (latency_size != size) at_size = measure(latency_size);  // the same figures otherwise
    report.teacher.latency_at_size = at_size[0];
    report.student.latency_at_size = at_size[1];
    bar.advance();
    bar.finish();
  }

  report.teacher_curves = load_run_curves(teacher_path, o.teacher_run);
  report.student_curves = load_run_curves(student_path, o.student_run);
  return report;
}

}  // namespace ganlite::report
