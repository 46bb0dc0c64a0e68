// GauGAN generators and the public PyTorch code: state dicts written by an independent PyTorch
// model (tests/nn/spade_reference.py, with NVlabs' / CAT's keys; NVlabs' with spectral norm)
// import into ganlite and reproduce PyTorch's output. The fixtures are written live (a ngf-4
// SPADE state dict is 8 MB, too large to commit) when Debian's python3 has torch.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "ganlite/io/checkpoint.h"
#include "ganlite/io/import_pth.h"
#include "ganlite/io/onnx_export.h"
#include "ganlite/io/onnx_runner.h"
#include "ganlite/io/pth.h"
#include "ganlite/nn/inference.h"
#include "ganlite/util/error.h"
#include "interop_test_helpers.h"
#include "test_support.h"
#include "tolerance.h"

using namespace ganlite;

namespace {

struct Fixture {
  std::filesystem::path pth;
  torch::Tensor input, output;
};

// Writes DIR/NAME.pth and NAME_io.pt with spade_reference.py (ngf 4, 5 classes + edge, 64x128).
Fixture write_fixture(const ganlite::testing::TempDir& dir, const std::string& arch, const std::string& norm,
                      bool spectral) {
  const std::string prefix = (dir / arch).string();
  const auto r = ganlite::testing::run_command(ganlite::testing::system_python() + " '" + GANLITE_SOURCE_DIR +
                                               "/tests/nn/spade_reference.py' fixture " + arch + " 4 6 64 128 " + norm +
                                               " '" + prefix + "'" + (spectral ? " 1" : ""));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  const io::NamedTensors io = io::load_pth_state_dict(prefix + "_io.pt");
  return {prefix + ".pth", ganlite::testing::find_named(io, "input"), ganlite::testing::find_named(io, "output")};
}

#define GANLITE_SKIP_WITHOUT_TORCH() \
  if (!ganlite::testing::python_has_module("torch")) GTEST_SKIP() << "no python3-torch to write the fixtures"

// Imports the fixture and compares the module and the inference runner with PyTorch's output.
io::ImportResult expect_import_matches(const Fixture& f, const std::string& arch) {
  io::ImportOptions options;
  options.arch = arch;
  io::ImportResult result = io::import_pth_generator(f.pth, options);
  EXPECT_TRUE(f.input.defined() && f.output.defined());
  torch::Tensor out;
  {
    torch::NoGradGuard no_grad;
    out = result.generator->forward(f.input);
  }
  EXPECT_EQ(out.sizes(), f.output.sizes());
  EXPECT_GT(f.output.std().item<double>(), 0.1) << "degenerate fixture";
  // PyTorch's kernels and LibTorch's: two fp32 evaluations of one network.
  const double bound =
      ganlite::testing::fp32_network_tolerance(*result.generator, ganlite::testing::max_abs(f.output));
  ganlite::testing::expect_close(out, f.output, bound, arch + " module");
  nn::InferenceRunner runner(*result.generator);
  ganlite::testing::expect_close(runner.forward(f.input), f.output, bound, arch + " runner");
  return result;
}

bool has_note(const io::ImportResult& r, const std::string& text) {
  return std::any_of(r.notes.begin(), r.notes.end(), [&](const auto& n) { return n.find(text) != std::string::npos; });
}

}  // namespace

TEST(SpadeImport, NvlabsWithSpectralNorm) {
  GANLITE_SKIP_WITHOUT_TORCH();
  ganlite::testing::TempDir dir;
  const auto result = expect_import_matches(write_fixture(dir, "spade", "batch", true), "spade");
  const auto& c = result.generator->config();
  EXPECT_EQ(c.ngf, 4);
  EXPECT_EQ(c.input_nc, 6);
  EXPECT_EQ(c.norm, "batch");
  EXPECT_TRUE(has_note(result, "folded spectral norm")) << result.notes.size();
}

TEST(SpadeImport, CatInceptionTeacher) {
  GANLITE_SKIP_WITHOUT_TORCH();
  ganlite::testing::TempDir dir;
  const auto result = expect_import_matches(write_fixture(dir, "inception_spade", "batch", false), "inception_spade");
  EXPECT_TRUE(result.generator->config().widths.empty());
  EXPECT_EQ(result.layout, "CAT InceptionSPADEGenerator");
}

TEST(SpadeImport, CatPrunedStudentWithAbsentBranches) {
  GANLITE_SKIP_WITHOUT_TORCH();
  ganlite::testing::TempDir dir;
  const auto result =
      expect_import_matches(write_fixture(dir, "inception_spade_pruned", "instance", false), "inception_spade");
  const auto& c = result.generator->config();
  EXPECT_EQ(c.norm, "instance");
  ASSERT_EQ(c.widths.blocks.size(), 7u);
  EXPECT_EQ(c.widths.blocks[0], (std::vector<int>{0, 3, 1, 2, 0, 4, 5, 0, 2, 0, 3, 1}));
  EXPECT_EQ(c.widths.blocks[2], (std::vector<int>{0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2}));
}

TEST(SpadeImport, WrongArchNamesTheMissingKey) {
  GANLITE_SKIP_WITHOUT_TORCH();
  ganlite::testing::TempDir dir;
  const Fixture f = write_fixture(dir, "spade", "batch", false);
  io::ImportOptions options;
  options.arch = "inception_spade";
  try {
    io::import_pth_generator(f.pth, options);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fc_norm"), std::string::npos) << e.what();
  }
}

namespace {

// A random label map (one-hot of 5 classes in 8x8 cells plus a sparse edge channel).
torch::Tensor random_labels(int64_t h, int64_t w) {
  torch::manual_seed(9);
  const auto cells = torch::randint(0, 5, {1, 1, h / 8, w / 8}, torch::kLong);
  const auto labels = torch::upsample_nearest2d(cells.to(torch::kFloat), {h, w}).to(torch::kLong);
  const auto edge = torch::rand({1, 1, h, w}).gt(0.8).to(torch::kFloat);
  return torch::cat({torch::zeros({1, 5, h, w}).scatter_(1, labels, 1.0), edge}, 1);
}

// Convs at unit gain (weights 1/sqrt(fan-in)), random norm statistics and scales: activations keep
// about unit scale, as in a trained network (tolerance.h).
void unit_gain(torch::nn::Module& g) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(3);
  for (const auto& item : g.named_modules()) {
    for (auto& p : item.value()->named_parameters(false)) {
      if (p.value().dim() == 4) p.value().normal_(0, 0.7 / std::sqrt(double(p.value()[0].numel())));
      if (p.value().dim() == 1 && p.key() == "bias") p.value().normal_(0, 0.1);
    }
  }
  ganlite::testing::randomize_norms(g);
}

nn::ArchConfig onnx_config(const std::string& arch, const std::string& norm) {
  nn::ArchConfig c;
  c.arch = arch;
  c.ngf = 4;
  c.input_nc = 6;
  c.label_nc = 5;
  c.norm = norm;
  return c;
}

}  // namespace

// The ONNX export (io/onnx_export_spade.cpp) runs in OpenCV's DNN module and agrees with LibTorch
// within two fp32 evaluations, for both architectures, both norms and a pruned student.
TEST(SpadeOnnx, RunsInOpenCvWithinFp32Tolerance) {
  if (!io::onnx_export_available()) GTEST_SKIP() << "built without libonnx";
  nn::ArchConfig pruned = onnx_config("inception_spade", "batch");
  pruned.widths.blocks = nn::GeneratorWidths{}.blocks;
  for (int b = 0; b < 7; ++b) pruned.widths.blocks.push_back({1, 0, 2, 0, 3, 0, 2, 0, 0, 0, 1, 3});
  pruned.widths.blocks[3] = {0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1};  // up_0: the shortcut alone
  for (const auto& c : {onnx_config("spade", "batch"), onnx_config("spade", "instance"),
                        onnx_config("inception_spade", "batch"), onnx_config("inception_spade", "instance"), pruned}) {
    const std::string what = c.arch + " " + c.norm + (c.widths.empty() ? "" : " pruned");
    SCOPED_TRACE(what);
    auto g = nn::make_generator(c);
    unit_gain(*g);
    g->eval();
    ganlite::testing::TempDir dir;
    io::OnnxExportOptions options;
    options.input_size = 64;
    options.input_height = 64;
    options.input_width = 128;
    io::export_onnx(*g, dir / "g.onnx", options);
    io::OnnxRunner runner(dir / "g.onnx");
    const auto x = random_labels(64, 128);
    torch::Tensor want;
    {
      torch::NoGradGuard no_grad;
      want = g->forward(x);
    }
    const auto got = runner.run(x);
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_GT(want.std().item<double>(), 0.05) << "degenerate output";
    ganlite::testing::expect_close(
        got, want, ganlite::testing::fp32_network_tolerance(*g, ganlite::testing::max_abs(want)), what);
  }
}

// `ganlite export --input-size HxW`: GauGAN's generators export and verify at a rectangle (the
// declared shape), and a side that is not a multiple of 64 is refused.
TEST(SpadeOnnx, ExportCliTakesHeightByWidth) {
  if (!io::onnx_export_available()) GTEST_SKIP() << "built without libonnx";
  ganlite::testing::TempDir dir;
  auto g = nn::make_generator(onnx_config("inception_spade", "batch"));
  unit_gain(*g);
  g->eval();
  io::save_generator(dir / "g.safetensors", *g);
  const std::string base = "export --model '" + (dir / "g.safetensors").string() + "' --out '" + (dir / "g.onnx").string() + "'";
  const auto r = ganlite::testing::run_cli(base + " --input-size 64x128 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  EXPECT_EQ(j.at("input_size"), nlohmann::json({64, 128}));
  EXPECT_EQ(j.at("verify").at("input_size"), nlohmann::json({64, 128}));
  // OpenCV DNN against LibTorch on a tanh output (scale <= 1): two fp32 evaluations of the network.
  EXPECT_LE(j.at("verify").at("max_abs_diff").get<double>(), ganlite::testing::fp32_network_tolerance(*g, 1.0));
  io::OnnxRunner runner(dir / "g.onnx");
  EXPECT_EQ(runner.run(random_labels(64, 128)).sizes(), (std::vector<int64_t>{1, 3, 64, 128}));
  for (const char* bad : {"64x100", "64x", "x128", "0x64"}) {
    const auto b = ganlite::testing::run_cli(base + " --input-size " + bad);
    EXPECT_EQ(b.exit_code, 2) << bad << ": " << b.output;
  }
}
