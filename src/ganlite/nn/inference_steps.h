// Internal to the fast inference path (nn/inference.cpp): the runtime steps a lowered graph
// compiles to, and the kernels they run. Not part of the library's interface.
#pragma once
#include <torch/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "ganlite/nn/inference.h"
#include "ganlite/nn/lowering.h"

namespace ganlite::nn::inference_detail {

// Contract of every step: it never writes into its input (which may be the caller's tensor) and
// returns either that input unchanged or a tensor it allocated, which later steps may modify.
using Fn = std::function<torch::Tensor(torch::Tensor)>;

struct Step {
  StepKind kind;
  std::string text;
  Fn fn;
  std::vector<StepKind> inner;  // the kinds of a block's sub-plans, as kinds_of lists them
};
using Plan = std::vector<Step>;

// Each step's kind followed by the kinds inside it (a block's sub-plans).
std::vector<StepKind> kinds_of(const Plan& plan);
torch::Tensor run_plan(const Plan& plan, torch::Tensor x);

struct CompileOptions {
  torch::ScalarType dtype = torch::kFloat;
  bool channels_last = true;
  ConvKernels kernels = ConvKernels::automatic;
  bool cpu = true;
};

// A graph after the runner's passes as steps on prepared weights (inference_compile.cpp).
Plan compile(const lowering::Graph& graph, const CompileOptions& options);
// One step per layer kind: convs and pads, norms and activations (inference_compile.cpp), blocks
// (inference_blocks.cpp).
Step conv_step(const lowering::Layer& layer, const CompileOptions& options);
Step block_step(const lowering::Layer& layer, const CompileOptions& options);

// The direct-kernel versions of a conv and a merged inception block (inference_direct.cpp), or
// nothing when the options or the layer's shape leave it to LibTorch's kernels.
std::optional<Step> direct_conv_step(const lowering::Layer& layer, const CompileOptions& options);
std::optional<Step> direct_inception_step(const lowering::Layer& layer, const CompileOptions& options);

// A weight in the compute dtype and memory format.
torch::Tensor prepare_weight(const torch::Tensor& w, torch::ScalarType dtype, bool channels_last);
// " +bn(folded)", " +in(affine)", "+relu", ... as the plan listing writes a conv's tail.
std::string tail_text(bool norm_folded, const lowering::NormSpec& norm, const lowering::ActSpec& act);
const char* pad_name(lowering::PadMode mode);

// --- kernels (inference_kernels.cpp) ---------------------------------------------------------

// Reflection / replication / zero padding written into a buffer of the input's memory format.
torch::Tensor pad_keep_format(const torch::Tensor& x, int64_t p, lowering::PadMode mode);

// A norm and activation in the compute dtype, run in place on a tensor the caller owns.
struct NormAct {
  enum class Kind { none, instance, affine } kind = Kind::none;
  double eps = 1e-5;
  torch::Tensor gamma, beta;   // instance: float [C], optional
  torch::Tensor scale, shift;  // affine: [1, C, 1, 1] in the compute dtype
  lowering::Act act = lowering::Act::none;
  double slope = 0.0;
};
NormAct make_norm_act(const lowering::NormSpec& norm, const lowering::ActSpec& act, torch::ScalarType dtype);
torch::Tensor norm_act_(torch::Tensor x, const NormAct& n);

// A step that runs a module's forward in eval mode, on contiguous NCHW data in the module's own
// parameter dtype, its result returned in the runner's dtype and memory format.
Step eager_step(const lowering::EagerSpec& eager, const std::string& text, const CompileOptions& options);

}  // namespace ganlite::nn::inference_detail
