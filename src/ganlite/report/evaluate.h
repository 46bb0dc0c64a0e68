// Teacher-versus-student evaluation on a dataset's test split: cost (MACs, parameters, measured
// latency), quality against the truth (PSNR / SSIM, FID / KID with an Inception weights file),
// the student's fidelity to the teacher, sample rows for a visual grid and the runs' loss curves.
// report/html_report.h renders the result; report.json is EvalReport::to_json().
#pragma once
#include <opencv2/core.hpp>
#include <torch/types.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "ganlite/metrics/fid.h"
#include "ganlite/metrics/latency.h"
#include "ganlite/nn/arch_config.h"
#include "ganlite/report/svg_plot.h"

namespace ganlite::report {

struct EvalOptions {
  std::string data;                // dataset root: test/ (paired) or testA/ + testA_truth/ (unpaired)
  std::string task = "pix2pix";    // a registered task (train/task_registry.h): its test layout
  std::string direction = "AtoB";  // AtoB | BtoA
  int max_images = 0;              // 0: the whole test split
  int size = 0;                    // evaluation size (images resized to size x size); 0: the first input's height
  int latency_size = 256;          // second latency size (batch 1)
  int profile_size = 256;          // second MAC count size: the papers' convention (methods.md 5)
  metrics::LatencyOptions latency;
  std::string inception;           // FID Inception weights; empty: no FID / KID
  std::string real_stats;          // .npz real statistics for FID instead of the truth images
  int inception_batch = 16;
  int kid_subsets = 100;
  int kid_subset_size = 1000;      // capped by the smaller set; CAT's protocol: 100 subsets of 100
  int grid_images = 4;             // rows of input | teacher | student | target
  std::string teacher_run;         // run folders for the loss curves; empty: from the checkpoint path
  std::string student_run;
  // Label-map tasks (--task spade): mIoU of the teacher's, the student's and the truth images with
  // a TorchScript segmenter against the test split's class maps (empty: no mIoU).
  std::string segmenter;
  int miou_classes = 0;            // the segmenter's classes; 0: the generators' label_nc
  std::array<double, 3> miou_mean{0, 0, 0};  // as metrics::MiouOptions
  std::array<double, 3> miou_std{1, 1, 1};
};

struct ModelEvaluation {
  std::string path;
  nn::ArchConfig arch;
  int64_t params = 0;
  int64_t macs = 0;          // at the evaluation size (padded as translate pads)
  int64_t macs_profile = 0;  // at EvalOptions::profile_size
  metrics::LatencyResult latency;          // batch 1 at the evaluation size
  metrics::LatencyResult latency_at_size;  // batch 1 at EvalOptions::latency_size
  double psnr = 0;  // mean over images, each capped at metrics::kPsnrCapDb (uint8-quantised, range 255)
  double ssim = 0;
  std::optional<double> psnr_vs_teacher;  // student only
  std::optional<double> ssim_vs_teacher;
  std::optional<double> fid;
  std::optional<metrics::KidResult> kid;  // only when real features exist (not with --real-stats)
  std::optional<double> miou;             // percent; label-map tasks with a segmenter

  nlohmann::json to_json() const;
};

// One row of the visual grid, 8-bit RGB images at the evaluation size.
struct GridRow {
  std::string name;
  cv::Mat input, teacher, student, target;
};

// Curves of a training run's logs.
struct RunCurves {
  std::string run_dir;  // empty when unknown
  std::string note;     // why there are no curves (empty when there are)
  std::vector<PlotSeries> losses;      // metrics.jsonl: every loss against "step"
  std::vector<PlotSeries> validation;  // val.jsonl: PSNR against epoch

  nlohmann::json to_json() const;
};

struct EvalReport {
  EvalOptions options;
  std::string device;
  int threads = 0;
  std::string split;  // "test (B)", "testA_truth"
  int64_t count = 0;  // images evaluated
  int64_t size = 0;   // evaluation size (label-map tasks: the width)
  int64_t height = 0;  // label-map tasks: the evaluation height (others: size x size)
  std::optional<double> truth_miou;  // the segmenter on the truth images (label-map tasks)
  std::string real_source;  // what FID's real side is, when computed
  ModelEvaluation teacher;
  ModelEvaluation student;
  std::vector<GridRow> grid;
  RunCurves teacher_curves;
  RunCurves student_curves;

  nlohmann::json to_json() const;
};

// a / b, or nullopt when b is not positive.
std::optional<double> ratio(double a, double b);

// The curves of the run that wrote `checkpoint` (RUN_DIR/checkpoints/x.safetensors) or of
// `run_dir` when given. Never throws for missing or bad logs: the note says what is missing.
RunCurves load_run_curves(const std::filesystem::path& checkpoint, const std::string& run_dir = "");

// Evaluates both generator files on the test split. Label-map tasks (spade) read the split's label
// maps at the generators' training resolution (ArchConfig input_height x input_width, SPADE's
// 'fixed' resize; `size` > 0: that width at the same aspect ratio) and score mIoU when
// options.segmenter is set. Throws UsageError for bad options and Error
// naming the input for a missing data split, a file that is not a generator, etc.
EvalReport evaluate_teacher_student(const std::filesystem::path& teacher, const std::filesystem::path& student,
                                    const EvalOptions& options, const torch::Device& device);

}  // namespace ganlite::report
