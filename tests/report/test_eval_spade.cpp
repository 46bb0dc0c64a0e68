// `ganlite eval --task spade`: label maps in (labels2scenes' test split), PSNR / SSIM against the
// truth and against the teacher, the evaluation at the teacher's training resolution, and mIoU
// with a TorchScript segmenter (skipped where /usr/bin/python3 has no torch to script one).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "ganlite/data/synthetic.h"
#include "ganlite/io/checkpoint.h"
#include "ganlite/metrics/image_quality.h"
#include "ganlite/nn/generator.h"
#include "test_support.h"

namespace fs = std::filesystem;
using ganlite::testing::run_cli;
using ganlite::testing::TempDir;

namespace {

constexpr int kEvalSpadeClasses = 6;  // labels2scenes

fs::path save_spade_generator(const fs::path& path, const std::string& arch, int ngf, uint64_t seed) {
  ganlite::nn::ArchConfig c;
  c.arch = arch;
  c.ngf = ngf;
  c.label_nc = kEvalSpadeClasses;
  c.input_nc = kEvalSpadeClasses + 1;
  c.norm = "batch";
  c.input_height = 64;  // trained at 64x128: eval reads the label maps at that size
  c.input_width = 128;
  torch::manual_seed(seed);
  auto g = ganlite::nn::make_generator(c);
  {  // unit gain: an untrained init's outputs are all near 0, the same 8-bit image for every model
    torch::NoGradGuard no_grad;
    for (auto& p : g->parameters()) {
      if (p.dim() == 4) p.normal_(0, 1.0 / std::sqrt(static_cast<double>(p[0].numel())));
    }
  }
  ganlite::io::save_generator(path, *g);
  return path;
}

struct SpadeEvalData {
  TempDir dir;
  fs::path data, teacher, student;
  SpadeEvalData() {
    data = dir / "l2s";
    ganlite::data::SyntheticOptions o;
    o.kind = "labels2scenes";
    o.count = 1;
    o.test_count = 3;
    o.size = 64;
    o.threads = 1;
    ganlite::data::make_synthetic_dataset(data, o);
    teacher = save_spade_generator(dir / "teacher.safetensors", "spade", 1, 1);
    student = save_spade_generator(dir / "student.safetensors", "inception_spade", 2, 2);
  }
};

std::string spade_eval_args(const SpadeEvalData& d, const fs::path& student, const fs::path& out) {
  return "eval --task spade --teacher '" + d.teacher.string() + "' --student '" + student.string() + "' --data '" +
         d.data.string() + "' --out '" + out.string() +
         "' --latency-size 32 --latency-runs 1 --latency-warmup 0 --profile-size 64 --threads 1 --json";
}

// The same toy segmenter as tests/cli/test_reproduce.cpp's (nearest labels2scenes class colour),
// without input normalisation.
fs::path spade_eval_segmenter(const TempDir& dir) {
  if (!ganlite::testing::python_has_module("torch")) return {};
  ganlite::testing::write_text_file(
      dir / "make_seg.py",
      "import torch, sys\n"
      "colors = [[70, 130, 180], [128, 64, 128], [70, 70, 70], [107, 142, 35], [0, 0, 142], [220, 20, 60]]\n"
      "class Seg(torch.nn.Module):\n"
      "    def __init__(self):\n"
      "        super().__init__()\n"
      "        self.register_buffer('palette', torch.tensor(colors, dtype=torch.float32).view(1, 6, 3, 1, 1) / 255.0)\n"
      "    def forward(self, x):\n"
      "        return -((x.unsqueeze(1) - self.palette) ** 2).sum(2)\n"
      "torch.jit.script(Seg()).save(sys.argv[1])\n");
  const auto r = ganlite::testing::run_command(ganlite::testing::system_python() + " '" +
                                               (dir / "make_seg.py").string() + "' '" + (dir / "seg.pt").string() + "'");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return dir / "seg.pt";
}

nlohmann::json parse_json_output(const std::string& output) { return nlohmann::json::parse(output.substr(output.find('{'))); }

}  // namespace

TEST(EvalSpade, ScoresAgainstTheTruthAndTheTeacherAtTheTrainingResolution) {
  SpadeEvalData d;
  auto r = run_cli(spade_eval_args(d, d.student, d.dir / "rep"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = parse_json_output(r.output);
  EXPECT_EQ(j.at("data").at("count"), 3);
  EXPECT_EQ(j.at("data").at("height"), 64);
  EXPECT_EQ(j.at("data").at("width"), 128);
  const auto& s = j.at("student");
  EXPECT_GT(s.at("psnr").get<double>(), 0.0);
  EXPECT_LT(s.at("psnr_vs_teacher").get<double>(), ganlite::metrics::kPsnrCapDb);
  EXPECT_LT(s.at("ssim_vs_teacher").get<double>(), 1.0);
  EXPECT_GT(j.at("teacher").at("macs").get<int64_t>(), s.at("macs").get<int64_t>());
  EXPECT_TRUE(fs::exists(d.dir / "rep" / "index.html"));

  // The teacher as its own student: the same figures against the truth, identical to the teacher.
  r = run_cli(spade_eval_args(d, d.teacher, d.dir / "rep_self"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  j = parse_json_output(r.output);
  EXPECT_EQ(j.at("student").at("psnr"), j.at("teacher").at("psnr"));
  EXPECT_EQ(j.at("student").at("ssim"), j.at("teacher").at("ssim"));
  EXPECT_EQ(j.at("student").at("psnr_vs_teacher").get<double>(), ganlite::metrics::kPsnrCapDb);
  EXPECT_DOUBLE_EQ(j.at("student").at("ssim_vs_teacher").get<double>(), 1.0);
  EXPECT_FALSE(j.contains("miou"));

  // --size picks the width at the training aspect ratio; a segmenter needs a label-map task.
  r = run_cli(spade_eval_args(d, d.student, d.dir / "rep64") + " --size 64");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  j = parse_json_output(r.output);
  EXPECT_EQ(j.at("data").at("height"), 32);
  EXPECT_EQ(j.at("data").at("width"), 64);
  r = run_cli("eval --teacher a --student b --data '" + d.data.string() + "' --out x --segmenter s.pt");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("--task spade"), std::string::npos) << r.output;
}

TEST(EvalSpade, MiouWithATorchScriptSegmenter) {
  SpadeEvalData d;
  const auto segmenter = spade_eval_segmenter(d.dir);
  if (segmenter.empty()) GTEST_SKIP() << "/usr/bin/python3 has no torch to script a segmenter";
  const auto r = run_cli(spade_eval_args(d, d.student, d.dir / "rep") + " --segmenter '" + segmenter.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = parse_json_output(r.output);
  // The truth images are painted in the class colours the segmenter looks for; untrained
  // generators' outputs are not.
  const double truth = j.at("miou").at("truth").get<double>();
  EXPECT_GT(truth, 50.0);
  EXPECT_LT(j.at("miou").at("teacher").get<double>(), truth);
  EXPECT_LT(j.at("miou").at("student").get<double>(), truth);
  EXPECT_EQ(j.at("student").at("miou"), j.at("miou").at("student"));
  const auto page = ganlite::testing::read_text_file(d.dir / "rep" / "index.html");
  EXPECT_TRUE(ganlite::testing::contains(page, "mIoU (%)"));
  EXPECT_TRUE(ganlite::testing::contains(page, "@ 64x128"));
}
