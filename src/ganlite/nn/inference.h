// The fast inference path for trained generators (issue 8). A generator module is lowered once
// (nn/lowering.h), rewritten by every pass (nn/pass_*.cpp) and compiled into a flat plan of fused
// steps on prepared weights (nn/inference_compile.cpp, nn/inference_blocks.cpp):
//   - BatchNorm (eval statistics) folded into the preceding conv / transposed conv;
//   - a conv directly followed by an InstanceNorm drops its bias (the norm removes it anyway);
//   - InstanceNorm + ReLU / LeakyReLU run as one scale-shift pass over NHWC data;
//   - reflection / replication pads written straight into a channels-last buffer, zero pads
//     merged into the conv's own padding;
//   - weights converted once to channels-last (and to bf16 for Precision::bf16), so LibTorch's
//     oneDNN kernels run without per-call reorders; Dropout / Identity dropped;
//   - CAT inception blocks with foldable norms as 7 merged convs (all 1x1s on the input, one
//     5x5 depthwise, all 1x1s to the output with pw_bn folded, the 3x3 / 5x5 pairs), 5 when the
//     3x3 / 5x5 branches are thinner than 16 channels (one merged pair);
//   - the 3x3 stride-2 transposed convs as a 2x2 conv plus pixel shuffle (LibTorch 1.13's CPU
//     conv_transpose2d is a slower BLAS path in fp32 and fails in bf16);
//   - stride-1 k x k convs to at most 4 channels (the last conv to RGB) as a space-to-depth
//     conv plus pixel shuffle;
//   - in fp32 on a CPU with AVX2 or AVX-512, thin convs on ganlite's direct kernels
//     (nn/direct_conv.h, ConvKernels): CAT blocks whose branches are not multiples of 16 channels
//     (the pruned students', and the ngf-64 teacher's 42 / 168) and stride-1 convs to fewer than
//     16 channels (the last conv to RGB), vectorised over the pixels of a row so that a 13- or
//     23-channel conv fills every lane; their bias, ReLU and residual add run in the conv's
//     epilogue, pads are written once as rings, res pairs run unmerged (3x3 as 3x3), NCHW; in bf16
//     on a CPU with avx512_bf16, the blocks of a pruned trunk on their bf16 build (vdpbf16ps);
//   - everything under c10::InferenceMode (no autograd bookkeeping);
//   - a layer it has no lowering for (a new architecture's block) runs eagerly through its own
//     forward: one Eager step, or the whole generator as one when the layer is no Sequential's
//     child (a bare torch::nn::Module has no forward to call).
// The runner's output matches the eval-mode module's: fp32 to ~1e-5, bf16 above 40 dB PSNR.
#pragma once
#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

#include "ganlite/nn/generator.h"

namespace ganlite::nn {

enum class Precision { fp32, bf16 };

// "fp32" | "bf16"; throws UsageError naming the valid values.
Precision parse_precision(const std::string& name);
std::string precision_name(Precision precision);
const std::vector<std::string>& valid_precisions();
// True when bf16 convolutions have native support on this CPU (avx512_bf16 or amx_bf16), so
// bf16 is worth asking for; CUDA devices always report true.
bool bf16_is_fast(const torch::Device& device);
// Whether bf16 convs run at all on `device`: on a CPU, oneDNN refuses them when its ISA is limited
// below AVX512_CORE (ONEDNN_MAX_CPU_ISA=AVX2 on an AVX-512 CPU), throwing its own dnnl::error.
// Probed once per process with a tiny conv.
bool bf16_convs_run(const torch::Device& device);

// What a step of the plan does: tests check the rewrites by kind, not by describe()'s text.
enum class StepKind {
  Conv,                     // conv with its norm folded or fused and its activation
  ConvTranspose,            // transposed conv the sub-pixel rewrite does not cover (fp32 under bf16)
  ConvTransposeAsSubPixel,  // 3x3 stride-2 transposed conv as a 2x2 conv + pixel shuffle
  SpaceToDepthConv,         // stride-1 k x k conv to <= 4 channels on the input folded 2x2 into channels
  Pad,                      // reflection / replication pad no conv follows
  NormAct,                  // norm and / or activation on its own
  Residual,                 // ResNet / MobileResNet block: x + body(x), body a sub-plan
  InceptionFused,           // CAT block with foldable norms as 7 (or 5) merged convs
  InceptionDirect,          // CAT block with foldable norms on the direct kernels (NCHW, fused epilogues)
  DirectConv,               // stride-1 conv on the direct kernels (NCHW)
  InceptionBranches,        // CAT block branch by branch (InstanceNorm), branches as sub-plans
  UnetSkip,                 // U-Net middle / innermost block: cat(lrelu(x), body(lrelu(x)))
  UnetOuter,                // U-Net outermost block, its layers in line
  Eager,                    // a layer (or the generator) run through its own forward: in eval mode,
                            // NCHW in its parameters' dtype; it holds the module, not a snapshot
};

// Which kernels run the stride-1 convs of fp32 CPU plans: LibTorch's (oneDNN), ganlite's direct
// kernels (nn/direct_conv.h: vectorised over pixels, for thin layers), or the direct kernels where
// they are expected to be faster (automatic: see inference_direct.cpp).
enum class ConvKernels { automatic, onednn, direct };
// "auto" | "onednn" | "direct"; throws UsageError naming the valid values.
ConvKernels parse_conv_kernels(const std::string& name);
std::string conv_kernels_name(ConvKernels kernels);
const std::vector<std::string>& valid_conv_kernels();

struct InferenceOptions {
  Precision precision = Precision::fp32;
  bool channels_last = true;  // NHWC activations and weights (what oneDNN prefers on CPU)
  ConvKernels kernels = ConvKernels::automatic;
};

class InferenceRunner {
 public:
  // Compiles `generator` (a snapshot of its current weights: later training does not leak in,
  // except into Eager steps, which hold their module)
  // for the generator's device, whatever its train/eval mode (BatchNorm uses running statistics,
  // Dropout is off). bf16 on a CPU without native bf16 runs, just slowly (see bf16_is_fast).
  // A layer the compiler does not know runs eagerly (StepKind::Eager) instead of failing.
  explicit InferenceRunner(GeneratorImpl& generator, InferenceOptions options = {});
  ~InferenceRunner();
  InferenceRunner(InferenceRunner&&) noexcept;
  InferenceRunner& operator=(InferenceRunner&&) noexcept;

  // x: [N, input_nc, H, W] float on the generator's device, H and W multiples of the
  // architecture's size multiple (nn::size_multiple). Returns [N, output_nc, H, W] float32,
  // contiguous. Runs under InferenceMode; the result is an inference tensor.
  torch::Tensor forward(const torch::Tensor& x) const;
  torch::Tensor operator()(const torch::Tensor& x) const { return forward(x); }

  const ArchConfig& config() const;
  const InferenceOptions& options() const;
  torch::Device device() const;
  // Number of fused steps in the plan (a conv with its folded norm and activation is one).
  size_t num_steps() const;
  // The kind of each top-level step, in plan order (one per describe() line).
  std::vector<StepKind> step_kinds() const;
  // Every step's kind, those inside blocks included: each block followed by its sub-plans' steps.
  std::vector<StepKind> all_step_kinds() const;
  // One line per step ("conv 3x3 s1 64->64 +reflect1 +in+relu"), for logs and --verbose.
  std::vector<std::string> describe() const;
  // Runs `x` once, timing each top-level step: (first line of its description, milliseconds).
  std::vector<std::pair<std::string, double>> profile_steps(const torch::Tensor& x) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ganlite::nn
