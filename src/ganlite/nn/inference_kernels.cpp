// The runtime pieces of the fast inference path that are not convs: pads that keep the memory
// format, InstanceNorm fused with its activation, and eager steps for layers without a lowering.
#include <torch/torch.h>

#include <memory>
#include <utility>

#include "ganlite/nn/inference_steps.h"
#include "ganlite/util/error.h"

namespace ganlite::nn::inference_detail {

using lowering::Act;
using lowering::PadMode;

// LibTorch's reflection_pad2d returns NCHW even for a channels-last input, which costs two
// reorders per conv: the ring is copied here into a buffer of the input's format instead.
torch::Tensor pad_keep_format(const torch::Tensor& x, int64_t p, PadMode mode) {
  if (p == 0) return x;
  const int64_t h = x.size(2), w = x.size(3);
  if (mode == PadMode::zero) return at::constant_pad_nd(x, {p, p, p, p}, 0.0).contiguous(x.suggest_memory_format());
  if (mode == PadMode::reflect && (p >= h || p >= w)) {
    throw Error("reflection padding " + std::to_string(p) + " needs an input larger than " + std::to_string(h) + "x" +
                std::to_string(w));
  }
  const bool reflect = mode == PadMode::reflect;
  auto out = at::empty({x.size(0), x.size(1), h + 2 * p, w + 2 * p},
                       x.options().memory_format(x.suggest_memory_format()));
  out.narrow(2, p, h).narrow(3, p, w).copy_(x);
  for (int64_t i = 1; i <= p; ++i) {
    out.select(2, p - i).narrow(2, p, w).copy_(x.select(2, reflect ? i : 0));
    out.select(2, p + h - 1 + i).narrow(2, p, w).copy_(x.select(2, reflect ? h - 1 - i : h - 1));
  }
  for (int64_t i = 1; i <= p; ++i) {
    out.select(3, p - i).copy_(out.select(3, reflect ? p + i : p));
    out.select(3, p + w - 1 + i).copy_(out.select(3, reflect ? p + w - 1 - i : p + w - 1));
  }
  return out;
}

namespace {

torch::Tensor apply_act_(torch::Tensor x, Act act, double slope) {
  switch (act) {
    case Act::relu: return x.relu_();
    case Act::leaky_relu: return at::leaky_relu_(x, slope);
    case Act::tanh: return x.tanh_();
    case Act::none: break;
  }
  return x;
}

// InstanceNorm (+ activation) in place on a tensor the caller owns: statistics over an NHWC view
// (a reduction over the outer H*W axis vectorises over C), then one scale-shift pass.
torch::Tensor instance_norm_act_(torch::Tensor x, const NormAct& n) {
  const int64_t batch = x.size(0), c = x.size(1);
  torch::Tensor var, mean;
  if (x.is_contiguous(at::MemoryFormat::ChannelsLast)) {
    auto v = x.permute({0, 2, 3, 1}).reshape({batch, -1, c});
    std::tie(var, mean) = at::var_mean(v, {1}, /*unbiased=*/false, /*keepdim=*/false);
  } else {
    std::tie(var, mean) = at::var_mean(x, {2, 3}, /*unbiased=*/false, /*keepdim=*/false);
  }
  var = var.to(torch::kFloat);
  mean = mean.to(torch::kFloat);
  auto scale = at::rsqrt(var + n.eps);
  if (n.gamma.defined()) scale = scale * n.gamma;
  auto shift = -mean * scale;
  if (n.beta.defined()) shift = shift + n.beta;
  x.mul_(scale.to(x.scalar_type()).view({batch, c, 1, 1})).add_(shift.to(x.scalar_type()).view({batch, c, 1, 1}));
  return apply_act_(std::move(x), n.act, n.slope);
}

// Eval mode for the duration of one eager call, each submodule's own mode restored after it (the
// runner never changes the caller's module for good: a training loop may still own it).
class EvalModeGuard {
 public:
  explicit EvalModeGuard(torch::nn::Module& m) {
    for (const auto& sub : m.modules(/*include_self=*/true)) modes_.emplace_back(sub, sub->is_training());
    m.eval();
  }
  ~EvalModeGuard() {
    // train() is recursive; modules() lists parents before their children, so each ends in its own mode.
    for (const auto& [sub, training] : modes_) sub->train(training);
  }
  EvalModeGuard(const EvalModeGuard&) = delete;
  EvalModeGuard& operator=(const EvalModeGuard&) = delete;

 private:
  std::vector<std::pair<std::shared_ptr<torch::nn::Module>, bool>> modes_;
};

}  // namespace

NormAct make_norm_act(const lowering::NormSpec& norm, const lowering::ActSpec& act, torch::ScalarType dtype) {
  NormAct n;
  n.act = act.kind;
  n.slope = act.slope;
  if (norm.kind == lowering::NormSpec::Kind::instance) {
    n.kind = NormAct::Kind::instance;
    n.eps = norm.eps;
    n.gamma = norm.gamma;
    n.beta = norm.beta;
  } else if (norm.kind == lowering::NormSpec::Kind::running) {
    n.kind = NormAct::Kind::affine;
    n.scale = norm.affine.scale.to(dtype).view({1, -1, 1, 1});
    n.shift = norm.affine.shift.to(dtype).view({1, -1, 1, 1});
  }
  return n;
}

torch::Tensor norm_act_(torch::Tensor x, const NormAct& n) {
  if (n.kind == NormAct::Kind::instance) return instance_norm_act_(std::move(x), n);
  if (n.kind == NormAct::Kind::affine) x.mul_(n.scale).add_(n.shift);
  return apply_act_(std::move(x), n.act, n.slope);
}

// Such a step holds the module, not a snapshot, so it sees later weight changes.
Step eager_step(const lowering::EagerSpec& eager, const std::string& text, const CompileOptions& options) {
  const auto params = eager.module->parameters();
  const auto module_dtype = params.empty() ? torch::kFloat : params.front().scalar_type();
  Fn fn = [module = eager.module, forward = eager.forward, module_dtype, dtype = options.dtype,
           channels_last = options.channels_last](torch::Tensor x) {
    torch::Tensor y;
    {
      EvalModeGuard eval(*module);
      y = forward(x.to(module_dtype).contiguous());
    }
    if (y.dim() != 4) throw Error("inference: eager step returned a " + std::to_string(y.dim()) + "-d tensor, not NCHW");
    y = y.to(dtype);
    y = channels_last ? y.contiguous(at::MemoryFormat::ChannelsLast) : y.contiguous();
    // Later steps write into what a step returns: never into a view of the step's input.
    if (!y.is_same(x) && y.is_alias_of(x)) y = y.clone();
    return y;
  };
  return {StepKind::Eager, text, std::move(fn), {}};
}

}  // namespace ganlite::nn::inference_detail
