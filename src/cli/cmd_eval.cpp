// `ganlite eval`: teacher versus student on a test split, written as a self-contained HTML report
// (REPORT_DIR/index.html) and report.json.
#include <iostream>
#include <nlohmann/json.hpp>

#include "command.h"
#include "ganlite/nn/profiler.h"
#include "ganlite/report/evaluate.h"
#include "ganlite/report/html_report.h"
#include "ganlite/train/task_registry.h"
#include "ganlite/util/device.h"
#include "ganlite/util/error.h"

namespace ganlite::cli {
namespace {

struct EvalCliOptions {
  CommonOptions common;
  std::string teacher;
  std::string student;
  std::string out;
  report::EvalOptions eval;
  std::vector<double> miou_mean{0, 0, 0};
  std::vector<double> miou_std{1, 1, 1};
};

std::array<double, 3> rgb_triple(const std::vector<double>& v, const char* flag) {
  if (v.size() != 3) throw UsageError(std::string(flag) + " takes 3 values (R,G,B), got " + std::to_string(v.size()));
  return {v[0], v[1], v[2]};
}

void run_eval(EvalCliOptions o) {
  apply_common(o.common);
  o.eval.miou_mean = rgb_triple(o.miou_mean, "--miou-mean");
  o.eval.miou_std = rgb_triple(o.miou_std, "--miou-std");
  const auto device = parse_device(o.common.device);
  // Fail before minutes of evaluation when the report cannot be written there.
  if (std::filesystem::exists(o.out) && !std::filesystem::is_directory(o.out)) {
    throw Error("report folder '" + o.out + "' exists and is not a folder");
  }
  const auto result = report::evaluate_teacher_student(o.teacher, o.student, o.eval, device);
  report::write_report(o.out, result);
  const auto index = (std::filesystem::path(o.out) / "index.html").string();
  if (o.common.json) {
    auto j = result.to_json();
    j["report"] = index;
    print_json(j);
    return;
  }
  const auto& t = result.teacher;
  const auto& s = result.student;
  std::cout << "evaluated " << result.count << " image(s) at " << (result.height > 0 ? result.height : result.size)
            << "x" << result.size << "\n"
            << "teacher: " << nn::format_macs(t.macs) << " MACs, " << t.latency.median_ms << " ms, PSNR " << t.psnr
            << ", SSIM " << t.ssim << (t.fid ? ", FID " + std::to_string(*t.fid) : "") << "\n"
            << "student: " << nn::format_macs(s.macs) << " MACs, " << s.latency.median_ms << " ms, PSNR " << s.psnr
            << ", SSIM " << s.ssim << (s.fid ? ", FID " + std::to_string(*s.fid) : "") << ", PSNR vs teacher "
            << s.psnr_vs_teacher.value_or(0) << ", SSIM vs teacher " << s.ssim_vs_teacher.value_or(0) << "\n";
  if (t.miou && s.miou) {
    std::cout << "mIoU: teacher " << *t.miou << " %, student " << *s.miou << " %, truth images "
              << result.truth_miou.value_or(0) << " %\n";
  }
  std::cout
            << "report: " << index << "\n";
}

void setup_eval(CLI::App& app) {
  auto o = std::make_shared<EvalCliOptions>();
  auto* cmd = app.add_subcommand("eval", "Evaluate a teacher and a student on a test split; write an HTML report");
  cmd->add_option("--teacher", o->teacher, "Teacher generator file (.safetensors)")->required();
  cmd->add_option("--student", o->student, "Student generator file (.safetensors)")->required();
  cmd->add_option("--data", o->eval.data, "Dataset root: test/ (paired A|B) or testA/ + testA_truth/ (unpaired)")
      ->required();
  cmd->add_option("--out", o->out, "Report folder (index.html, report.json)")->required();
  cmd->add_option("--inception", o->eval.inception,
                  "FID Inception weights (pt_inception-2015-12-05-6726825d.pth); enables FID and KID");
  cmd->add_option("--kid-subsets", o->eval.kid_subsets, "KID: random subsets averaged")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--kid-subset-size", o->eval.kid_subset_size,
                  "KID: images per subset, capped by the test split (CAT's protocol: 100 subsets of 100)")
      ->capture_default_str()
      ->check(CLI::Range(2, 1000000));
  cmd->add_option("--real-stats", o->eval.real_stats, "Real statistics (.npz with mu, sigma) for FID instead of the truth");
  cmd->add_option("--task", o->eval.task, "Dataset layout")->capture_default_str()->check(one_of(train::task_names()));
  cmd->add_option("--direction", o->eval.direction, "Translation direction")
      ->capture_default_str()
      ->check(one_of({"AtoB", "BtoA"}));
  cmd->add_option("--max-images", o->eval.max_images, "Evaluate at most N test images (0: all)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--size", o->eval.size,
                  "Evaluation size S (images resized to SxS; 0: the test images' height; label maps: S wide at the "
                  "teacher's training aspect ratio, 0: its training resolution)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--latency-size", o->eval.latency_size, "Second input size for latency (batch 1)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--profile-size", o->eval.profile_size,
                  "Second MAC count size S (SxS; label maps: S x 2S, the papers' GauGAN 256x512)")
      ->capture_default_str()
      ->check(CLI::Range(4, 8192));
  cmd->add_option("--latency-runs", o->eval.latency.runs, "Timed runs per latency figure")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--latency-warmup", o->eval.latency.warmup, "Untimed warm-up runs before timing")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--grid", o->eval.grid_images, "Sample rows in the report's image grid")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--segmenter", o->eval.segmenter,
                  "TorchScript segmenter for mIoU of label-map tasks (--task spade; as `ganlite miou`)");
  cmd->add_option("--miou-classes", o->eval.miou_classes, "The segmenter's classes (0: the generators' label_nc)")
      ->capture_default_str()
      ->check(CLI::Range(0, 4096));
  cmd->add_option("--miou-mean", o->miou_mean, "Segmenter input mean R,G,B on [0, 1] images")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--miou-std", o->miou_std, "Segmenter input std R,G,B")->delimiter(',')->capture_default_str();
  cmd->add_option("--teacher-run", o->eval.teacher_run, "Teacher's run folder (default: from --teacher's path)");
  cmd->add_option("--student-run", o->eval.student_run, "Student's run folder (default: from --student's path)");
  add_device_options(*cmd, o->common);
  add_output_options(*cmd, o->common);
  cmd->callback([o] { run_eval(*o); });
}

}  // namespace

GANLITE_COMMAND("eval", 65, setup_eval);

}  // namespace ganlite::cli
