// The fast inference path against the eval-mode modules it compiles: fp32 within the bound of
// two fp32 evaluations of the network (tests/tolerance.h), bf16 above 40 dB PSNR (peak-to-peak 2
// for [-1, 1] images), every architecture and norm.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <string>

#include "ganlite/nn/direct_conv.h"
#include "ganlite/nn/generator.h"
#include "ganlite/nn/inference.h"
#include "ganlite/nn/lowering.h"
#include "ganlite/util/error.h"
#include "tolerance.h"

namespace {

using ganlite::nn::ArchConfig;
using ganlite::nn::ConvKernels;
using ganlite::nn::InferenceOptions;
using ganlite::nn::InferenceRunner;
using ganlite::nn::Precision;
using ganlite::nn::StepKind;
namespace lowering = ganlite::nn::lowering;

long count_kind(const std::vector<StepKind>& kinds, StepKind kind) { return std::count(kinds.begin(), kinds.end(), kind); }

ArchConfig config(const std::string& arch, const std::string& norm, const std::string& padding = "reflect") {
  ArchConfig c;
  c.arch = arch;
  c.ngf = 8;
  c.n_blocks = 3;
  c.num_downs = 5;
  c.norm = norm;
  c.padding = padding;
  return c;
}

// Non-trivial norm parameters and running statistics, so folding them is actually exercised.
ganlite::nn::Generator make_trained_like(const ArchConfig& c) {
  torch::manual_seed(3);
  auto g = ganlite::nn::make_generator(c);
  torch::NoGradGuard no_grad;
  for (const auto& item : g->named_modules()) {
    if (auto bn = std::dynamic_pointer_cast<torch::nn::BatchNorm2dImpl>(item.value())) {
      bn->running_mean.uniform_(-0.2, 0.2);
      bn->running_var.uniform_(0.5, 2.0);
      bn->weight.uniform_(0.5, 1.5);
      bn->bias.uniform_(-0.2, 0.2);
    } else if (auto in = std::dynamic_pointer_cast<torch::nn::InstanceNorm2dImpl>(item.value())) {
      if (in->options.affine()) {
        in->weight.uniform_(0.5, 1.5);
        in->bias.uniform_(-0.2, 0.2);
      }
    }
  }
  // Larger conv weights than the N(0, 0.02) init, so outputs use tanh's range.
  for (auto& p : g->named_parameters()) {
    if (p.key().find("weight") != std::string::npos && p.value().dim() == 4) p.value().mul_(5.0);
  }
  g->eval();
  return g;
}

torch::Tensor reference(ganlite::nn::GeneratorImpl& g, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  return g.forward(x);
}

// The runner (folded norms, merged and rewritten convs, other oneDNN kernels) and the module are
// two fp32 evaluations of one network: eps32 * sum(K) of its layers, relative to the output's scale.
double fp32_tolerance(const torch::nn::Module& g, const torch::Tensor& want) {
  return ganlite::testing::fp32_network_tolerance(g, ganlite::testing::max_abs(want));
}

double psnr(const torch::Tensor& a, const torch::Tensor& b) {
  const double mse = (a - b).pow(2).mean().item<double>();
  return 10.0 * std::log10(4.0 / std::max(mse, 1e-20));
}

// bf16 against fp32: the claim of README.md, 40 dB (RMS 0.02 on [-1, 1] images). Each conv step
// rounds its input, weights and output to bf16 (u = 2^-9; products and sums stay fp32);
// round-to-nearest errors have RMS u / sqrt(3), so a step adds ~u RMS of its output's scale and L
// steps ~sqrt(L) u: ~50 dB for the 9 steps of these ResNets, where InstanceNorm (which divides by
// a per-image std) costs up to ~8 dB more (41-42 dB for the instance-norm cases, 47-68 dB for the
// others). A worst-case bound (every rounding the same way, 3 u per step) is no use at this
// depth. bf16 rounding is the same on every CPU (round to nearest even of the same values); the
// CPU changes only the fp32 sums, ~2^-16 of the bf16 error.
void expect_bf16_above_40db(const torch::Tensor& got, const torch::Tensor& want, const std::string& what) {
  const double db = psnr(got, want);
  if (const char* print = std::getenv("GANLITE_TEST_PRINT_TOLERANCES"); print && std::string(print) == "1") {
    std::cerr << "[tolerance] bf16 " << what << ": " << db << " dB (bound 40 dB)\n";
  }
  EXPECT_GT(db, 40.0) << what;
}

struct Case {
  std::string arch, norm, padding;
};

class InferenceMatches : public ::testing::TestWithParam<Case> {};

TEST_P(InferenceMatches, Fp32WithinTolerance) {
  const auto& p = GetParam();
  auto g = make_trained_like(config(p.arch, p.norm, p.padding));
  torch::manual_seed(4);
  const auto x = torch::rand({2, 3, 32, 32}) * 2 - 1;
  const auto x_copy = x.clone();
  const auto want = reference(*g, x);
  InferenceRunner runner(*g);
  const auto got = runner.forward(x);
  ASSERT_EQ(got.sizes(), want.sizes());
  ganlite::testing::expect_close(got, want, fp32_tolerance(*g, want), p.arch + " " + p.norm);
  EXPECT_TRUE(torch::equal(x, x_copy)) << "the runner wrote into its input";
  EXPECT_GT(want.std().item<double>(), 0.05) << "degenerate test output";
  // Every layer of the built-in architectures is lowered: none falls back to an eager step.
  const auto kinds = runner.all_step_kinds();
  EXPECT_GE(kinds.size(), runner.num_steps());
  EXPECT_EQ(count_kind(kinds, StepKind::Eager), 0) << p.arch + " " + p.norm;
}

TEST_P(InferenceMatches, Bf16Above40dB) {
  if (!ganlite::testing::bf16_convs_run()) GTEST_SKIP() << "LibTorch cannot run bf16 convs here";
  const auto& p = GetParam();
  auto g = make_trained_like(config(p.arch, p.norm, p.padding));
  torch::manual_seed(5);
  const auto x = torch::rand({1, 3, 32, 32}) * 2 - 1;
  const auto want = reference(*g, x);
  InferenceRunner runner(*g, InferenceOptions{Precision::bf16, true});
  const auto got = runner.forward(x);
  EXPECT_EQ(got.scalar_type(), torch::kFloat);
  expect_bf16_above_40db(got, want, p.arch + " " + p.norm);
}

// Both conv kernels, forced, at a size whose trunk (9x9) is no multiple of any vector width: the
// direct kernels' masked tails and their pad rings in every padding mode.
TEST_P(InferenceMatches, DirectAndOneDnnKernelsWithinTolerance) {
  const auto& p = GetParam();
  auto g = make_trained_like(config(p.arch, p.norm, p.padding));
  torch::manual_seed(6);
  const int side = p.arch == "unet" ? 32 : 36;  // U-Net: 5 down stages need a multiple of 32
  const auto x = torch::rand({2, 3, side, side}) * 2 - 1;
  const auto want = reference(*g, x);
  for (const auto kernels : {ConvKernels::onednn, ConvKernels::direct}) {
    const auto what = p.arch + " " + p.norm + " " + ganlite::nn::conv_kernels_name(kernels);
    InferenceRunner runner(*g, InferenceOptions{Precision::fp32, true, kernels});
    ganlite::testing::expect_close(runner.forward(x), want, fp32_tolerance(*g, want), what);
    const auto kinds = runner.all_step_kinds();
    const long direct = count_kind(kinds, StepKind::DirectConv) + count_kind(kinds, StepKind::InceptionDirect);
    if (kernels == ConvKernels::onednn) {
      EXPECT_EQ(direct, 0) << what;
    } else if (p.arch != "unet") {  // a U-Net has stride-2 and transposed convs only
      EXPECT_GT(direct, 0) << what;
      // CAT blocks with foldable norms all take the direct route.
      EXPECT_EQ(count_kind(kinds, StepKind::InceptionFused), 0) << what;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Archs, InferenceMatches,
                         ::testing::Values(Case{"resnet", "batch", "reflect"}, Case{"resnet", "instance", "reflect"},
                                           Case{"resnet", "instance_affine", "zero"},
                                           Case{"resnet", "none", "replicate"},
                                           Case{"mobile_resnet", "instance", "reflect"},
                                           Case{"mobile_resnet", "batch", "zero"},
                                           Case{"inception", "batch", "reflect"},
                                           Case{"inception", "batch", "zero"},
                                           Case{"inception", "none", "replicate"},
                                           Case{"inception", "instance", "zero"},
                                           Case{"inception", "instance_affine", "replicate"},
                                           Case{"unet", "batch", "reflect"}, Case{"unet", "instance", "reflect"}),
                         [](const auto& info) { return info.param.arch + "_" + info.param.norm + "_" + info.param.padding; });

TEST(Inference, PrunedInceptionWithAbsentBranches) {
  auto c = config("inception", "batch");
  c = c.with_resolved_widths();
  c.widths.blocks = {{0, 5, 0, 0, 7, 3}, {0, 0, 0, 0, 0, 0}, {4, 0, 2, 6, 0, 0}};
  c.widths.stem = 6;
  auto g = make_trained_like(c);
  const auto x = torch::rand({1, 3, 24, 24}) * 2 - 1;
  const auto want = reference(*g, x);
  // Every BatchNorm block takes the fused route (branch convs merged; the empty one passes x on),
  // on oneDNN or on the direct kernels.
  for (const auto& [kernels, kind] : {std::pair{ConvKernels::onednn, StepKind::InceptionFused},
                                     std::pair{ConvKernels::direct, StepKind::InceptionDirect}}) {
    InferenceRunner runner(*g, InferenceOptions{Precision::fp32, true, kernels});
    ganlite::testing::expect_close(runner.forward(x), want, fp32_tolerance(*g, want), "pruned inception");
    EXPECT_EQ(count_kind(runner.step_kinds(), kind), 3);
  }
  if (ganlite::testing::bf16_convs_run()) {
    InferenceRunner bf16(*g, InferenceOptions{Precision::bf16, true});
    expect_bf16_above_40db(bf16.forward(x), want, "pruned inception");
  } else {  // oneDNN limited below AVX512_CORE: a clear usage error, not oneDNN's own exception
    EXPECT_THROW(InferenceRunner(*g, InferenceOptions{Precision::bf16, true}), ganlite::UsageError);
  }
}

TEST(Inference, Bf16InceptionBlocksOnTheDirectKernels) {
  // Where the CPU has avx512_bf16, bf16 plans run the blocks of a pruned trunk (no multiple of 16
  // channels) on the bf16 direct kernels (channel pairs, fp32 sums and residual); both routes stay
  // above 40 dB against the fp32 module.
  if (!ganlite::testing::bf16_convs_run()) GTEST_SKIP() << "LibTorch cannot run bf16 convs here";
  auto c = config("inception", "batch").with_resolved_widths();
  c.widths.trunk = 27;
  auto g = make_trained_like(c);
  torch::manual_seed(8);
  const auto x = torch::rand({2, 3, 36, 36}) * 2 - 1;
  const auto want = reference(*g, x);
  const bool direct = ganlite::nn::direct_conv::bf16_supported();
  for (const auto kernels : {ConvKernels::automatic, ConvKernels::onednn}) {
    InferenceRunner runner(*g, InferenceOptions{Precision::bf16, true, kernels});
    const auto what = "bf16 " + ganlite::nn::conv_kernels_name(kernels);
    expect_bf16_above_40db(runner.forward(x), want, what);
    const auto kinds = runner.step_kinds();
    const bool on_direct = direct && kernels == ConvKernels::automatic;
    EXPECT_EQ(count_kind(kinds, StepKind::InceptionDirect), on_direct ? 3 : 0) << what;
    EXPECT_EQ(count_kind(kinds, StepKind::InceptionFused), on_direct ? 0 : 3) << what;
  }
}

TEST(Inference, FoldsBatchNormAndFusesActivations) {
  auto g = make_trained_like(config("resnet", "batch"));
  InferenceRunner runner(*g);
  // stem, 2 down, 3 residual blocks, 2 up, last conv: every norm and ReLU folded into a conv step.
  EXPECT_EQ(runner.num_steps(), 9u);
  const auto kinds = runner.step_kinds();
  EXPECT_EQ(count_kind(kinds, StepKind::Residual), 3);
  EXPECT_EQ(count_kind(kinds, StepKind::NormAct), 0);
  // The graph the runner compiles: the stem's BatchNorm folded and its ReLU fused, tanh last.
  const auto graph = lowering::lower(*g, lowering::Consumer::runner);
  ASSERT_EQ(graph.size(), runner.num_steps());
  ASSERT_EQ(graph.front().kind, lowering::LayerKind::Conv);
  EXPECT_TRUE(graph.front().conv.norm_folded);
  EXPECT_EQ(graph.front().conv.act.kind, lowering::Act::relu);
  EXPECT_EQ(graph.front().conv.pre_pad.mode, lowering::PadMode::reflect);
  EXPECT_EQ(graph.front().conv.pre_pad.amount, 3);
  ASSERT_EQ(graph.back().kind, lowering::LayerKind::Conv);
  EXPECT_EQ(graph.back().conv.act.kind, lowering::Act::tanh);
}

TEST(Inference, RewritesUpSamplingAndThinOutputConvs) {
  // The 3x3 stride-2 up-sampling convs run as sub-pixel convs (LibTorch 1.13's CPU
  // conv_transpose2d is a slow BLAS path in fp32 and fails in bf16) and the last 7x7 conv to RGB
  // as a space-to-depth conv on oneDNN; the InferenceMatches cases check the rewrites' numbers,
  // this that they are used.
  for (const auto precision : {Precision::fp32, Precision::bf16}) {
    if (precision == Precision::bf16 && !ganlite::testing::bf16_convs_run()) continue;  // refused here
    for (const std::string arch : {"resnet", "inception"}) {
      auto g = make_trained_like(config(arch, "instance"));
      InferenceRunner runner(*g, InferenceOptions{precision, true, ConvKernels::onednn});
      const auto kinds = runner.step_kinds();
      EXPECT_EQ(count_kind(kinds, StepKind::ConvTransposeAsSubPixel), 2) << arch;
      EXPECT_EQ(count_kind(kinds, StepKind::ConvTranspose), 0) << arch;
      EXPECT_EQ(count_kind(kinds, StepKind::SpaceToDepthConv), 1) << arch;
      EXPECT_EQ(kinds.back(), StepKind::SpaceToDepthConv) << arch;
      // By default an fp32 plan runs that conv on the direct kernels where the CPU has AVX2 or
      // AVX-512 (they fill their lanes with pixels, not with its 3 output channels).
      const bool vector_isa = ganlite::nn::direct_conv::best_isa() != ganlite::nn::direct_conv::Isa::portable;
      const auto automatic = InferenceRunner(*g, InferenceOptions{precision, true}).step_kinds().back();
      const bool direct = precision == Precision::fp32 && vector_isa;
      EXPECT_EQ(automatic, direct ? StepKind::DirectConv : StepKind::SpaceToDepthConv) << arch;
    }
  }
}

TEST(Inference, MergesInceptionResBranches) {
  auto c = config("inception", "batch").with_resolved_widths();
  auto g = make_trained_like(c);
  InferenceRunner runner(*g, InferenceOptions{Precision::fp32, true, ConvKernels::onednn});
  ASSERT_EQ(runner.step_kinds().at(3), StepKind::InceptionFused);  // stem, 2 down-sampling convs, then a block
  // One res conv pair at 5x5 whose middle width is the 3x3 and 5x5 branches' together.
  const auto& w = c.widths.blocks.at(0);  // {res_k1, res_k3, res_k5, dw_k1, dw_k3, dw_k5}
  ASSERT_GT(w[1], 0);
  ASSERT_GT(w[2], 0);
  const int64_t dim = c.ngf * 4;
  const auto graph = lowering::lower(*g, lowering::Consumer::runner);
  ASSERT_EQ(graph.at(3).kind, lowering::LayerKind::InceptionFused);
  const auto& res = graph.at(3).fused->res;
  ASSERT_EQ(res.size(), 1u);
  EXPECT_EQ(res[0].k, 5);
  EXPECT_EQ(res[0].w_in.size(1), dim);
  EXPECT_EQ(res[0].w_in.size(0), w[1] + w[2]);
  EXPECT_EQ(res[0].w_out.size(0), dim);
  // The direct kernels get the pairs apart (3x3 as 3x3), their sum the merged pair's.
  const auto& separate = graph.at(3).fused->res_separate;
  ASSERT_EQ(separate.size(), 2u);
  EXPECT_EQ(separate[0].k, 3);
  EXPECT_EQ(separate[1].k, 5);
  EXPECT_EQ(separate[0].w_in.size(0) + separate[1].w_in.size(0), res[0].w_in.size(0));

  // Branches of a full vector (16 channels) or more stay apart: merged they cost more than they save.
  c.widths.blocks.at(0) = {0, 16, 16, 0, 0, 8};
  auto wide = make_trained_like(c);
  InferenceRunner wide_runner(*wide, InferenceOptions{Precision::fp32, true, ConvKernels::onednn});
  ASSERT_EQ(wide_runner.step_kinds().at(3), StepKind::InceptionFused);
  const auto wide_graph = lowering::lower(*wide, lowering::Consumer::runner);
  const auto& wide_res = wide_graph.at(3).fused->res;
  ASSERT_EQ(wide_res.size(), 2u);
  EXPECT_TRUE(wide_graph.at(3).fused->res_separate.empty()) << "nothing merged, nothing kept apart";
  EXPECT_EQ(wide_res[0].k, 3);
  EXPECT_EQ(wide_res[1].k, 5);
  EXPECT_EQ(wide_res[0].w_in.size(0), 16);
  EXPECT_EQ(wide_res[1].w_in.size(0), 16);
  const auto x = torch::rand({1, 3, 16, 16}) * 2 - 1;
  const auto want = reference(*wide, x);
  ganlite::testing::expect_close(wide_runner.forward(x), want, fp32_tolerance(*wide, want), "wide inception");
}

TEST(Inference, SnapshotsWeightsAndAcceptsTrainMode) {
  auto g = make_trained_like(config("resnet", "instance"));
  const auto x = torch::rand({1, 3, 16, 16}) * 2 - 1;
  const auto want = reference(*g, x);
  InferenceRunner runner(*g);
  g->train();  // the runner always uses eval semantics
  {
    torch::NoGradGuard no_grad;
    for (auto& p : g->parameters()) p.zero_();
  }
  ganlite::testing::expect_close(runner.forward(x), want, fp32_tolerance(*g, want), "snapshot");
}

// A block of a family the compiler has no rewrite for: a gate with BatchNorm, so eval mode (running
// statistics) and train mode (batch statistics) give different outputs.
struct GateBlockImpl : torch::nn::Module {
  explicit GateBlockImpl(int64_t channels) {
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, channels, 3).padding(1)));
    norm = register_module("norm", torch::nn::BatchNorm2d(channels));
  }
  torch::Tensor forward(const torch::Tensor& x) { return x * torch::sigmoid(norm(conv(x))); }
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d norm{nullptr};
};
TORCH_MODULE(GateBlock);

// Known layers around the gate: inside the Sequential the compiler walks, or (in_sequential false)
// registered on its own between two Sequentials, where the runner has no forward to call for it.
class GatedGeneratorImpl : public ganlite::nn::GeneratorImpl {
 public:
  GatedGeneratorImpl(const ArchConfig& c, bool in_sequential) : GeneratorImpl(c), in_sequential_(in_sequential) {
    namespace tnn = torch::nn;
    head = register_module("head", tnn::Sequential(tnn::ReflectionPad2d(1), tnn::Conv2d(tnn::Conv2dOptions(3, 8, 3)),
                                                   tnn::InstanceNorm2d(8), tnn::ReLU()));
    if (in_sequential) {
      head->push_back(GateBlock(8));
    } else {
      gate = register_module("gate", GateBlock(8));
    }
    tail = register_module("tail", tnn::Sequential(tnn::Conv2d(tnn::Conv2dOptions(8, 3, 1)), tnn::Tanh()));
    torch::NoGradGuard no_grad;
    for (const auto& m : modules(/*include_self=*/false)) {
      if (auto bn = std::dynamic_pointer_cast<tnn::BatchNorm2dImpl>(m)) {
        bn->running_mean.uniform_(-0.2, 0.2);
        bn->running_var.uniform_(0.5, 2.0);
      }
    }
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = head->forward(x);
    if (!in_sequential_) x = gate->forward(x);
    return tail->forward(x);
  }
  ganlite::nn::GeneratorOutput forward_with_taps(torch::Tensor x) override { return {forward(x), {}}; }
  std::vector<std::string> tap_names() const override { return {}; }
  std::vector<ganlite::nn::ScoredNorm> scored_norms() const override { return {}; }

 private:
  bool in_sequential_;
  torch::nn::Sequential head{nullptr}, tail{nullptr};
  GateBlock gate{nullptr};
};

TEST(Inference, UnknownBlockRunsEagerlyThroughItsModule) {
  for (const bool in_sequential : {true, false}) {
    const std::string what = in_sequential ? "gate in a Sequential" : "gate outside any Sequential";
    torch::manual_seed(6);
    auto g = std::make_shared<GatedGeneratorImpl>(config("resnet", "instance"), in_sequential);
    const auto x = torch::rand({2, 3, 16, 16}) * 2 - 1;
    g->eval();
    const auto want = reference(*g, x);
    g->train();  // the runner runs the block in eval mode and leaves the caller's mode alone
    InferenceRunner runner(*g, InferenceOptions{Precision::fp32, true, ConvKernels::onednn});
    const auto got = runner.forward(x);
    EXPECT_TRUE(g->is_training()) << what;
    for (const auto& m : g->modules()) EXPECT_TRUE(m->is_training()) << what;
    ASSERT_EQ(got.sizes(), want.sizes()) << what;
    ganlite::testing::expect_close(got, want, fp32_tolerance(*g, want), what);
    const auto kinds = runner.step_kinds();
    if (in_sequential) {  // the known layers around the gate are still lowered
      EXPECT_EQ(kinds, (std::vector<StepKind>{StepKind::Conv, StepKind::Eager, StepKind::Conv})) << what;
    } else {  // the generator as one eager step
      EXPECT_EQ(kinds, std::vector<StepKind>{StepKind::Eager}) << what;
    }
    // The Eager layer holds the module itself (the gate, or the whole generator).
    const auto graph = lowering::lower(*g, lowering::Consumer::runner);
    ASSERT_EQ(graph.size(), kinds.size()) << what;
    const auto& eager = graph.at(in_sequential ? 1 : 0);
    ASSERT_EQ(eager.kind, lowering::LayerKind::Eager) << what;
    if (in_sequential) {
      EXPECT_NE(std::dynamic_pointer_cast<GateBlockImpl>(eager.eager.module), nullptr) << what;
    } else {
      EXPECT_EQ(eager.eager.module.get(), g.get()) << what;
    }
    if (ganlite::testing::bf16_convs_run()) {  // bf16 around an fp32 module: converted both ways
      InferenceRunner bf16(*g, InferenceOptions{Precision::bf16, true});
      expect_bf16_above_40db(bf16.forward(x), want, what);
    }
    // The test can tell the modes apart: batch statistics move the output far beyond the fp32
    // bound (this forward also updates the running statistics, so it comes last).
    const double train_mode_change = (want - reference(*g, x)).abs().max().item<double>();
    EXPECT_GT(train_mode_change, 100 * fp32_tolerance(*g, want)) << what;
  }
}

// A generator that is one Sequential.
class SequentialGeneratorImpl : public ganlite::nn::GeneratorImpl {
 public:
  SequentialGeneratorImpl(const ArchConfig& c, torch::nn::Sequential layers) : GeneratorImpl(c) {
    model = register_module("model", std::move(layers));
  }
  torch::Tensor forward(torch::Tensor x) override { return model->forward(x); }
  ganlite::nn::GeneratorOutput forward_with_taps(torch::Tensor x) override { return {forward(x), {}}; }
  std::vector<std::string> tap_names() const override { return {}; }
  std::vector<ganlite::nn::ScoredNorm> scored_norms() const override { return {}; }

 private:
  torch::nn::Sequential model{nullptr};
};

TEST(Inference, ConvWithoutLoweringRunsEagerly) {
  // A conv with its own reflect padding mode has no conv step: it runs through its module, and
  // the norm and activation after it run as a step of their own.
  namespace tnn = torch::nn;
  torch::manual_seed(7);
  auto g = std::make_shared<SequentialGeneratorImpl>(
      config("resnet", "instance"),
      tnn::Sequential(tnn::Conv2d(tnn::Conv2dOptions(3, 8, 3).padding(1).padding_mode(torch::kReflect)),
                      tnn::InstanceNorm2d(8), tnn::ReLU(), tnn::Conv2d(tnn::Conv2dOptions(8, 3, 1)), tnn::Tanh()));
  g->eval();
  const auto x = torch::rand({1, 3, 16, 16}) * 2 - 1;
  const auto want = reference(*g, x);
  InferenceRunner runner(*g, InferenceOptions{Precision::fp32, true, ConvKernels::onednn});
  EXPECT_EQ(runner.step_kinds(), (std::vector<StepKind>{StepKind::Eager, StepKind::NormAct, StepKind::Conv}));
  ganlite::testing::expect_close(runner.forward(x), want, fp32_tolerance(*g, want), "reflect-mode conv");
}

// The rewrites are passes in one explicit order; the ONNX exporter takes only the exact, plain ones.
TEST(Lowering, PassesRunInTheirRegisteredOrder) {
  std::vector<std::string> names, exported;
  for (const auto& pass : lowering::passes()) {
    names.push_back(pass.name);
    if (pass.for_export) exported.push_back(pass.name);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"fold_norms", "merge_inception", "merge_pads", "fuse_norm_act",
                                             "sub_pixel", "space_to_depth"}));
  EXPECT_EQ(exported, (std::vector<std::string>{"fold_norms", "merge_pads"}));
}

// Every layer kind in a graph and its bodies, and the number of running-statistics Norm layers.
void collect_kinds(const lowering::Graph& graph, std::vector<lowering::LayerKind>* kinds, int* running_norms) {
  for (const auto& layer : graph) {
    kinds->push_back(layer.kind);
    if (layer.kind == lowering::LayerKind::Norm && layer.norm.kind == lowering::NormSpec::Kind::running) ++*running_norms;
    for (const auto& body : layer.bodies) collect_kinds(body, kinds, running_norms);
  }
}

TEST(Lowering, ExportGraphHasFoldedNormsAndNoRunnerRewrites) {
  for (const std::string arch : {"resnet", "mobile_resnet", "inception", "unet"}) {
    auto g = make_trained_like(config(arch, "batch"));
    auto graph = lowering::lower(*g, lowering::Consumer::onnx);
    std::vector<lowering::LayerKind> kinds;
    int running_norms = 0;
    collect_kinds(graph, &kinds, &running_norms);
    auto count = [&kinds](lowering::LayerKind k) { return std::count(kinds.begin(), kinds.end(), k); };
    // No BatchNorm after a conv is left (CAT's pw_bn after the branch sum is the Branches layer's;
    // the InstanceNorms inside MobileResNet's separable convs stay).
    EXPECT_EQ(running_norms, 0) << arch;
    EXPECT_EQ(count(lowering::LayerKind::Branches), arch == "inception" ? 3 : 0) << arch;
    EXPECT_EQ(count(lowering::LayerKind::Pad), 0) << arch;  // merged into the convs after them
    EXPECT_EQ(count(lowering::LayerKind::NormAct), 0) << arch;
    EXPECT_EQ(count(lowering::LayerKind::InceptionFused), 0) << arch;
    EXPECT_EQ(count(lowering::LayerKind::Eager), 0) << arch;
    EXPECT_GT(count(lowering::LayerKind::Act), 0) << arch;
    lowering::for_each_graph(graph, [&arch](lowering::Graph& g) {
      for (const auto& layer : g) {
        if (layer.kind == lowering::LayerKind::Conv) {
          EXPECT_EQ(layer.conv.rewrite, lowering::ConvRewrite::none) << arch;
        }
      }
    });
  }
}

TEST(Inference, BadInputsAreErrors) {
  EXPECT_THROW(ganlite::nn::parse_precision("fp8"), ganlite::UsageError);
  EXPECT_EQ(ganlite::nn::parse_precision("bf16"), Precision::bf16);
  auto g = make_trained_like(config("resnet", "instance"));
  InferenceRunner runner(*g);
  EXPECT_THROW(runner.forward(torch::rand({1, 4, 16, 16})), ganlite::UsageError);
}

}  // namespace
