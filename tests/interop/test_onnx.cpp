// ONNX export: every generator architecture passes onnx::checker, runs in OpenCV DNN and matches
// LibTorch within the bound of two fp32 evaluations of the network (tests/tolerance.h; at two
// sizes with --dynamic-size); imported and pruned models too.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <nlohmann/json.hpp>

#ifdef GANLITE_HAVE_ONNX
#include <onnx/onnx_pb.h>
#endif

#include "ganlite/compress/prune.h"
#include "ganlite/io/checkpoint.h"
#include "ganlite/io/import_pth.h"
#include "ganlite/io/onnx_export.h"
#include "ganlite/io/onnx_runner.h"
#include "ganlite/util/atomic_file.h"
#include "ganlite/util/error.h"
#include "interop_test_helpers.h"
#include "test_support.h"
#include "tolerance.h"

using namespace ganlite;
using ganlite::testing::tiny_config;

// As the sibling tests: a build without libonnx cannot export, so these tests do not apply.
#define GANLITE_SKIP_WITHOUT_ONNX() \
  if (!io::onnx_export_available()) GTEST_SKIP() << "built without libonnx"

namespace {

// Exports `g`, runs the file in OpenCV at each size and compares with LibTorch.
void expect_onnx_matches(nn::GeneratorImpl& g, const std::vector<int>& sizes, bool dynamic, const std::string& what) {
  ASSERT_TRUE(io::onnx_export_available());
  ganlite::testing::TempDir dir;
  g.eval();
  io::OnnxExportOptions options;
  options.dynamic_size = dynamic;
  options.input_size = sizes.front();
  const auto path = dir / "g.onnx";
  const io::OnnxExportSummary summary = io::export_onnx(g, path, options);
  EXPECT_GT(summary.nodes, 0) << what;
  io::OnnxRunner runner(path);
  torch::manual_seed(7);
  for (int size : sizes) {
    const torch::Tensor x = torch::rand({1, g.config().input_nc, size, size}) * 2 - 1;
    torch::NoGradGuard no_grad;
    const torch::Tensor expected = g.forward(x);
    const torch::Tensor got = runner.run(x);
    ASSERT_EQ(got.sizes(), expected.sizes()) << what << " at " << size;
    // OpenCV's conv kernels and LibTorch's: two fp32 evaluations of the network.
    const double bound = ganlite::testing::fp32_network_tolerance(g, ganlite::testing::max_abs(expected));
    ganlite::testing::expect_close(got, expected, bound, what + " at " + std::to_string(size));
  }
}

nn::Generator tiny(const nn::ArchConfig& config) {
  nn::Generator g = nn::make_generator(config);
  ganlite::testing::randomize_norms(*g);
  return g;
}

}  // namespace

TEST(OnnxExport, ResnetInstanceNorm) {
  GANLITE_SKIP_WITHOUT_ONNX();
  expect_onnx_matches(*tiny(tiny_config("resnet", "instance")), {16, 24}, true, "resnet instance");
}

TEST(OnnxExport, ResnetBatchNormFoldedFixedSize) {
  GANLITE_SKIP_WITHOUT_ONNX();
  expect_onnx_matches(*tiny(tiny_config("resnet", "batch")), {20}, false, "resnet batch");
}

TEST(OnnxExport, ResnetReplicateAndZeroPadding) {
  GANLITE_SKIP_WITHOUT_ONNX();
  auto c = tiny_config("resnet", "instance_affine");
  c.padding = "replicate";
  expect_onnx_matches(*tiny(c), {12, 16}, true, "resnet replicate");
  c.padding = "zero";
  c.dropout = 0.5;  // a Dropout layer in the blocks: skipped
  expect_onnx_matches(*tiny(c), {16}, true, "resnet zero");
}

TEST(OnnxExport, MobileResnet) {
  GANLITE_SKIP_WITHOUT_ONNX();
  expect_onnx_matches(*tiny(tiny_config("mobile_resnet", "instance")), {16, 28}, true, "mobile instance");
  expect_onnx_matches(*tiny(tiny_config("mobile_resnet", "batch")), {16}, false, "mobile batch");
}

TEST(OnnxExport, InceptionWithPrunedBlocks) {
  GANLITE_SKIP_WITHOUT_ONNX();
  auto c = tiny_config("inception", "batch", 4, 3);
  c.widths = {4, 8, 16, 8, 4, {{0, 3, 1, 2, 0, 4}, {0, 0, 0, 0, 0, 0}, {5, 0, 2, 0, 1, 0}}};
  expect_onnx_matches(*tiny(c), {16, 20}, true, "inception pruned batch");
  auto t = tiny_config("inception", "instance_affine", 4, 2);
  t.padding = "zero";  // ConstantPad2d layers
  expect_onnx_matches(*tiny(t), {16, 12}, true, "inception teacher zero padding");
}

TEST(OnnxExport, Unet) {
  GANLITE_SKIP_WITHOUT_ONNX();
  expect_onnx_matches(*tiny(tiny_config("unet", "batch", 2)), {32, 64}, true, "unet batch");
  expect_onnx_matches(*tiny(tiny_config("unet", "instance", 2)), {32}, false, "unet instance");
}

TEST(OnnxExport, ImportedPrunedRoundTrip) {
  GANLITE_SKIP_WITHOUT_ONNX();
  // A pix2pix teacher from the public code's layout, pruned with CAT's rule, exported.
  io::ImportOptions o;
  o.arch = "resnet";
  io::ImportResult imported = io::import_pth_generator(ganlite::testing::interop_fixture("resnet_pix2pix_batch.pth"), o);
  compress::PruneOptions prune;
  prune.input_size = 16;
  prune.min_channels = 2;
  prune.target_macs = 0.6 * static_cast<double>(compress::count_generator_macs(imported.generator->config(), 16));
  compress::PruneResult pruned = compress::prune_to_mac_budget(*imported.generator, prune);
  EXPECT_LT(pruned.macs_after, pruned.macs_before);
  EXPECT_FALSE(pruned.config.widths.empty());
  expect_onnx_matches(*pruned.student, {16, 24}, true, "pruned import");
}

#ifdef GANLITE_HAVE_ONNX
// The exporter writes the lowered graph after the passes that keep ONNX exact and plain: every
// BatchNorm after a conv folded into it, zero pads merged into the conv after them. What is left
// is one Conv per conv module and CAT's pw_bn after each branch sum.
TEST(OnnxExport, WritesTheLoweredGraphWithNormsFoldedAndPadsMerged) {
  auto c = tiny_config("inception", "batch", 4, 3);
  c.padding = "zero";  // ConstantPad2d layers in the blocks
  auto g = tiny(c);
  io::OnnxExportOptions options;
  options.input_size = 16;
  onnx::ModelProto model;
  ASSERT_TRUE(model.ParseFromString(io::export_onnx_bytes(*g, options)));
  std::map<std::string, int> ops;
  for (const auto& node : model.graph().node()) ++ops[node.op_type()];
  int convs = 0, pads = 0;
  for (const auto& m : g->modules()) {
    convs += dynamic_cast<const torch::nn::Conv2dImpl*>(m.get()) != nullptr;
    pads += dynamic_cast<const torch::nn::ConstantPad2dImpl*>(m.get()) != nullptr;
  }
  EXPECT_GT(pads, 0);
  EXPECT_EQ(ops["Conv"], convs);
  EXPECT_EQ(ops["BatchNormalization"], c.n_blocks);
  EXPECT_EQ(ops["Pad"], 2);  // the reflection pads around the stem and the last conv
  expect_onnx_matches(*g, {16}, false, "inception batch zero padding");
}
#endif

namespace {

// A generator that is one Sequential of the given layers.
class SequentialGeneratorImpl : public nn::GeneratorImpl {
 public:
  SequentialGeneratorImpl(const nn::ArchConfig& c, torch::nn::Sequential layers) : GeneratorImpl(c) {
    model = register_module("model", std::move(layers));
  }
  torch::Tensor forward(torch::Tensor x) override { return model->forward(x); }
  nn::GeneratorOutput forward_with_taps(torch::Tensor x) override { return {forward(x), {}}; }
  std::vector<std::string> tap_names() const override { return {}; }
  std::vector<nn::ScoredNorm> scored_norms() const override { return {}; }

 private:
  torch::nn::Sequential model{nullptr};
};

}  // namespace

TEST(OnnxExport, LayerWithoutLoweringIsNamed) {
  GANLITE_SKIP_WITHOUT_ONNX();
  // The fast path runs a conv with its own reflect padding mode eagerly; the exporter cannot.
  namespace tnn = torch::nn;
  auto g = std::make_shared<SequentialGeneratorImpl>(
      tiny_config("resnet", "instance"),
      tnn::Sequential(tnn::Conv2d(tnn::Conv2dOptions(3, 3, 3).padding(1).padding_mode(torch::kReflect)), tnn::Tanh()));
  io::OnnxExportOptions options;
  options.input_size = 16;
  try {
    io::export_onnx_bytes(*g, options);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'model.0'"), std::string::npos) << e.what();
  }
}

TEST(OnnxExport, BadOptionsAreUsageErrors) {
  auto g = tiny(tiny_config("unet", "batch", 2));
  io::OnnxExportOptions o;
  o.opset = 9;
  EXPECT_THROW(io::export_onnx_bytes(*g, o), UsageError);
  o.opset = 13;
  o.input_size = 48;  // not a multiple of 32
  try {
    io::export_onnx_bytes(*g, o);
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("multiple of 32"), std::string::npos) << e.what();
  }
}

TEST(OnnxRunner, PathsAndErrors) {
  EXPECT_TRUE(io::is_onnx_path("a/b/model.onnx"));
  EXPECT_TRUE(io::is_onnx_path("MODEL.ONNX"));
  EXPECT_FALSE(io::is_onnx_path("model.safetensors"));
  EXPECT_FALSE(io::is_onnx_path("onnx"));
  ganlite::testing::TempDir dir;
  EXPECT_THROW(io::OnnxRunner(dir / "missing.onnx"), Error);
  write_file_atomic(dir / "junk.onnx", std::string("not a protobuf"));
  try {
    io::OnnxRunner runner(dir / "junk.onnx");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("junk.onnx"), std::string::npos) << e.what();
  }
}

TEST(ExportCli, WritesVerifiedOnnx) {
  GANLITE_SKIP_WITHOUT_ONNX();
  ganlite::testing::TempDir dir;
  auto g = tiny(tiny_config("mobile_resnet", "instance"));
  io::save_generator(dir / "g.safetensors", *g);
  const auto res = ganlite::testing::run_cli("export --model '" + (dir / "g.safetensors").string() +
                                             "' --format onnx --out '" + (dir / "g.onnx").string() +
                                             "' --input-size 32 --dynamic-size --json");
  ASSERT_EQ(res.exit_code, 0) << res.output;
  const auto j = nlohmann::json::parse(res.output.substr(res.output.find('{')));
  // OpenCV DNN against LibTorch on a tanh output (scale <= 1): two fp32 evaluations of the network.
  EXPECT_LE(j["verify"]["max_abs_diff"].get<double>(), ganlite::testing::fp32_network_tolerance(*g, 1.0));
  EXPECT_GT(j["nodes"].get<int>(), 0);
  EXPECT_TRUE(std::filesystem::exists(dir / "g.onnx"));
  const auto bad = ganlite::testing::run_cli("export --model '" + (dir / "g.safetensors").string() +
                                             "' --format tflite --out '" + (dir / "x").string() + "'");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  const auto opset = ganlite::testing::run_cli("export --model '" + (dir / "g.safetensors").string() +
                                               "' --out '" + (dir / "x.onnx").string() + "' --opset 7");
  EXPECT_EQ(opset.exit_code, 2) << opset.output;
  EXPECT_NE(opset.output.find("--opset 7"), std::string::npos) << opset.output;
}
