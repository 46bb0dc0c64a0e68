// A generator lowered once into a small tree of typed layers, the one walk over its modules.
// Two consumers read it: the fast inference path (nn/inference.*, which applies every pass and
// compiles the result to runtime steps) and the ONNX exporter (io/onnx_export*, which applies the
// passes marked for export). Each rewrite is a pass over the tree in its own file (nn/pass_*.cpp),
// listed in order in nn/lowering_passes.cpp.
#pragma once
#include <torch/nn/module.h>
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "ganlite/nn/fold_norm.h"

namespace ganlite::nn {
class GeneratorImpl;
}

namespace ganlite::nn::lowering {

enum class PadMode { zero, reflect, replicate };
enum class Act { none, relu, leaky_relu, tanh };

struct ActSpec {
  Act kind = Act::none;
  double slope = 0.0;  // leaky_relu
};

// A per-channel normalisation: per-image statistics (an InstanceNorm without running statistics)
// or a fixed affine map (a BatchNorm / InstanceNorm with running statistics, in eval mode).
struct NormSpec {
  enum class Kind { none, instance, running } kind = Kind::none;
  double eps = 1e-5;          // instance
  torch::Tensor gamma, beta;  // instance: float32 [C], undefined without affine parameters
  ChannelAffine affine;       // running: scale and shift, float64 [C]
};

struct PadSpec {
  int64_t amount = 0;  // the same on all four sides
  PadMode mode = PadMode::zero;
};

// What the runner's passes turn a conv into (each the same function, another computation).
enum class ConvRewrite { none, sub_pixel, space_to_depth };

struct ConvSpec {
  // Snapshots of the module's tensors (float32); float64 once a pass has folded something in.
  torch::Tensor weight, bias;  // bias may be undefined
  std::vector<int64_t> stride, padding, dilation, output_padding;  // 2 values each
  int64_t groups = 1;
  bool transposed = false;
  // Set by passes: a reflect / replicate pad in front (pass_merge_pads), the norm folded into the
  // weights (pass_fold_norms), a norm and activation run on the output (pass_fuse_norm_act).
  PadSpec pre_pad;
  bool norm_folded = false;
  NormSpec norm;
  ActSpec act;
  // pass_sub_pixel / pass_space_to_depth: the weights of the rewritten conv, float64.
  ConvRewrite rewrite = ConvRewrite::none;
  torch::Tensor rewritten_weight, rewritten_bias;

  int64_t in_channels() const { return transposed ? weight.size(0) : weight.size(1) * groups; }
  int64_t out_channels() const { return transposed ? weight.size(1) * groups : weight.size(0); }
};

// A CAT inception block with foldable norms merged into few convs (pass_merge_inception): float64.
struct FusedInception {
  PadMode mode = PadMode::zero;
  torch::Tensor w1, b1;     // all 1x1 convs on the block input (undefined when none)
  torch::Tensor w2, b2;     // one depthwise k2 x k2 conv over w1's outputs (undefined when none)
  int64_t k2 = 1;
  torch::Tensor w3, b3;     // all 1x1 convs to the block output, the block's norm folded in
  struct ResPair {
    int64_t k;
    torch::Tensor w_in, b_in, w_out, b_out;
  };
  std::vector<ResPair> res;  // k x k conv pairs on the block input
  // The pairs before thin ones were merged into `res` (empty when none were): the direct kernels
  // fill their lanes whatever a conv's width, so they run a 3x3 pair as 3x3, not centred in a 5x5.
  std::vector<ResPair> res_separate;
};

// A module run through its own forward (a layer no lowering covers).
struct EagerSpec {
  std::shared_ptr<torch::nn::Module> module;
  std::function<torch::Tensor(torch::Tensor)> forward;
  std::string what;  // the module's type, or why the whole generator runs eagerly
};

enum class LayerKind {
  Conv,            // conv or transposed conv (ConvSpec)
  Pad,             // reflection / replication / zero pad (PadSpec)
  Norm,            // NormSpec
  Act,             // ActSpec
  NormAct,         // a norm and / or activation fused into one (pass_fuse_norm_act)
  Residual,        // x + bodies[0](x)
  Branches,        // x + norm(sum of bodies(x)): CAT inception block, res branches first
  InceptionFused,  // a Branches layer merged into few convs (pass_merge_inception)
  SkipConcat,      // cat(act(x), bodies[0](act(x))): U-Net middle / innermost block
  Inline,          // bodies[0](x), kept as a group: U-Net outermost block
  Eager,           // EagerSpec
};

struct Layer {
  LayerKind kind = LayerKind::Eager;
  std::string name;  // the module's state-dict prefix
  ConvSpec conv;
  PadSpec pad;
  NormSpec norm;  // Norm, NormAct; Branches: the norm after the branch sum (named norm_name)
  ActSpec act;    // Act, NormAct; SkipConcat: the activation shared by skip and body
  std::vector<std::vector<Layer>> bodies;
  size_t res_branches = 0;  // Branches: bodies[0, res_branches) are res branches, the rest dw
  std::string norm_name;
  std::shared_ptr<const FusedInception> fused;
  EagerSpec eager;
};
using Graph = std::vector<Layer>;

// The generator's children in registration order (what every generator's forward runs), lowered.
// Dropout and Identity layers are dropped (eval mode). A layer with no lowering becomes an Eager
// layer when it is a Sequential's child (a Sequential holds the forward to call); otherwise the
// whole generator is one Eager layer. Tensors are snapshots: later training does not leak in,
// except into Eager layers, which hold their module.
Graph lower_generator(GeneratorImpl& generator);

// Calls `fn` on `graph` and on every body nested in it, children before parents.
void for_each_graph(Graph& graph, const std::function<void(Graph&)>& fn);

// A rewrite of the lowered graph, applied to every (nested) layer list by apply_passes.
struct Pass {
  std::string name;
  bool for_export = false;  // exact and plain enough for the ONNX exporter too
  std::function<void(Graph&)> run;
};

// The passes in the order they run (nn/lowering_passes.cpp).
const std::vector<Pass>& passes();

enum class Consumer { runner, onnx };
// Applies, in order, every pass (runner) or those marked for export (onnx), each over the whole tree.
void apply_passes(Graph& graph, Consumer consumer);

// For passes that rewrite a conv followed by pixel_shuffle(2): each channel's bias repeated for its
// 4 output phases (a, b), in pixel_shuffle's order (c * 4 + a * 2 + b), float64; undefined stays so.
torch::Tensor phase_bias(const torch::Tensor& bias);

// lower_generator followed by apply_passes.
Graph lower(GeneratorImpl& generator, Consumer consumer);

}  // namespace ganlite::nn::lowering
