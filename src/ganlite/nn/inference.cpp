#include "ganlite/nn/inference.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <unordered_map>

#include "ganlite/nn/fold_norm.h"
#include "ganlite/nn/inception_generator.h"
#include "ganlite/nn/layers.h"
#include "ganlite/nn/mobile_resnet_generator.h"
#include "ganlite/nn/resnet_generator.h"
#include "ganlite/nn/unet_generator.h"
#include "ganlite/torch_compat.h"
#include "ganlite/util/error.h"

namespace ganlite::nn {

const std::vector<std::string>& valid_precisions() {
  static const std::vector<std::string> v{"fp32", "bf16"};
  return v;
}

Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::fp32;
  if (name == "bf16") return Precision::bf16;
  throw_bad_choice("precision", name, valid_precisions());
}

std::string precision_name(Precision precision) { return precision == Precision::bf16 ? "bf16" : "fp32"; }

bool bf16_is_fast(const torch::Device& device) {
  if (!device.is_cpu()) return true;
  static const bool fast = [] {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("flags", 0) == 0) {
        return line.find(" avx512_bf16") != std::string::npos || line.find(" amx_bf16") != std::string::npos;
      }
    }
    return false;
  }();
  return fast;
}

bool bf16_convs_run(const torch::Device& device) {
  if (!device.is_cpu()) return true;
  static const bool runs = [] {
    try {
      c10::InferenceMode guard;
      const auto options = torch::TensorOptions().dtype(torch::kBFloat16);
      const auto x = torch::ones({1, 16, 8, 8}, options).contiguous(at::MemoryFormat::ChannelsLast);
      const auto w = torch::ones({16, 16, 3, 3}, options).contiguous(at::MemoryFormat::ChannelsLast);
      (void)torch::conv2d(x, w);
      return true;
    } catch (const std::exception&) {  // dnnl::error, which is no c10::Error
      return false;
    }
  }();
  return runs;
}

namespace {

using Module = torch::nn::Module;
using ModulePtr = std::shared_ptr<Module>;
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
std::vector<StepKind> kinds_of(const Plan& plan) {
  std::vector<StepKind> kinds;
  for (const auto& step : plan) {
    kinds.push_back(step.kind);
    kinds.insert(kinds.end(), step.inner.begin(), step.inner.end());
  }
  return kinds;
}

torch::Tensor run_plan(const Plan& plan, torch::Tensor x) {
  for (const auto& step : plan) x = step.fn(std::move(x));
  return x;
}

std::vector<int64_t> to_vec(const torch::ExpandingArray<2>& a) { return {a->begin(), a->end()}; }

// The k x k window at the centre of a [.., .., K, K] kernel (K >= k, same parity): where a smaller
// kernel sits when it is merged into a larger one.
torch::Tensor centre(const torch::Tensor& kernel, int64_t k) {
  const int64_t off = (kernel.size(2) - k) / 2;
  return kernel.narrow(2, off, k).narrow(3, off, k);
}

// A conv bias for the 4 output phases (a, b) of a conv followed by pixel_shuffle(2): each
// channel's bias repeated for its 4 phase channels, in pixel_shuffle's order (c * 4 + a * 2 + b).
torch::Tensor phase_bias(const torch::Tensor& bias, torch::ScalarType dtype) {
  if (!bias.defined()) return {};
  const int64_t c = bias.size(0);
  return bias.to(torch::kDouble).view({c, 1}).expand({c, 4}).reshape({-1}).to(dtype).contiguous();
}

enum class PadMode { zero, reflect, replicate };
enum class Act { none, relu, leaky_relu, tanh };

const char* pad_name(PadMode m) { return m == PadMode::reflect ? "reflect" : m == PadMode::replicate ? "replicate" : "zero"; }

// Reflection / replication padding written into a buffer of the input's memory format. LibTorch's
// reflection_pad2d returns NCHW even for a channels-last input, which costs two reorders per conv.
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

torch::Tensor apply_act_(torch::Tensor x, Act act, double slope) {
  switch (act) {
    case Act::relu: return x.relu_();
    case Act::leaky_relu: return at::leaky_relu_(x, slope);
    case Act::tanh: return x.tanh_();
    case Act::none: break;
  }
  return x;
}

// A per-channel normalisation after a conv: instance norm (statistics per image) or a fixed
// affine map (a BatchNorm that could not be folded).
struct NormSpec {
  enum class Kind { none, instance, affine } kind = Kind::none;
  double eps = 1e-5;
  torch::Tensor gamma, beta;  // float [C], optional for instance
  torch::Tensor scale, shift; // affine: [1, C, 1, 1] in the compute dtype
};

// InstanceNorm (+ activation) in place on a tensor the caller owns: statistics over an NHWC view
// (a reduction over the outer H*W axis vectorises over C), then one scale-shift pass.
torch::Tensor instance_norm_act_(torch::Tensor x, const NormSpec& n, Act act, double slope) {
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
  return apply_act_(std::move(x), act, slope);
}

torch::Tensor norm_act_(torch::Tensor x, const NormSpec& n, Act act, double slope) {
  if (n.kind == NormSpec::Kind::instance) return instance_norm_act_(std::move(x), n, act, slope);
  if (n.kind == NormSpec::Kind::affine) x.mul_(n.scale).add_(n.shift);
  return apply_act_(std::move(x), act, slope);
}

std::string act_text(Act act) {
  switch (act) {
    case Act::relu: return "+relu";
    case Act::leaky_relu: return "+lrelu";
    case Act::tanh: return "+tanh";
    case Act::none: break;
  }
  return "";
}

// Eval mode for the duration of one eager call, each submodule's own mode restored after it (the
// runner never changes the caller's module for good: a training loop may still own it).
class EvalModeGuard {
 public:
  explicit EvalModeGuard(Module& m) {
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
  std::vector<std::pair<ModulePtr, bool>> modes_;
};

// A module the compiler cannot lower that has no forward the runner can call on its own (it is
// no child of a Sequential): the caller then runs the whole generator eagerly.
class NoCallableForward : public Error {
 public:
  using Error::Error;
};

// A step that runs `forward` (the forward of `module`, or of the whole generator) under the
// runner's InferenceMode: in eval mode, on contiguous NCHW data in the module's own parameter
// dtype (fp32 for a module without parameters), its result returned in the runner's dtype and
// memory format. Such a step holds the module, not a snapshot, so it sees later weight changes.
Step eager_step(const ModulePtr& module, std::function<torch::Tensor(torch::Tensor)> forward, const std::string& text,
                torch::ScalarType dtype, bool channels_last) {
  const auto params = module->parameters();
  const auto module_dtype = params.empty() ? torch::kFloat : params.front().scalar_type();
  Fn fn = [module, forward = std::move(forward), module_dtype, dtype, channels_last](torch::Tensor x) {
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

class Compiler {
 public:
  Compiler(torch::ScalarType dtype, bool channels_last) : dtype_(dtype), channels_last_(channels_last) {}

  // A Sequential's layers, or the children of any other module in registration order.
  Plan compile_children(const ModulePtr& m, const std::string& prefix) {
    Layers layers;
    if (std::dynamic_pointer_cast<torch::nn::SequentialImpl>(m)) {
      flatten(m, prefix, layers);
    } else {
      for (const auto& item : m->named_children()) flatten(item.value(), join(prefix, item.key()), layers);
    }
    return compile(layers);
  }

 private:
  using Layers = std::vector<std::pair<std::string, ModulePtr>>;

  static std::string join(const std::string& a, const std::string& b) { return a.empty() ? b : a + "." + b; }

  // Nested Sequentials (CAT's ConvBNReLU, SeparableConv2d's `conv`) are inlined, so a conv and the
  // norm / activation after it meet in one list whatever the nesting. A Sequential holds its
  // layers as AnyModules, whose forward an eager step can call whatever the layer's type.
  void flatten(const ModulePtr& m, const std::string& name, Layers& out) {
    if (auto seq = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(m)) {
      const auto children = m->named_children();
      if (children.size() == seq->size()) {
        size_t i = 0;
        for (const auto& any : *seq) callable_[children[i++].value().get()] = any;
      }
      for (const auto& item : children) flatten(item.value(), join(name, item.key()), out);
    } else if (auto sep = std::dynamic_pointer_cast<SeparableConv2dImpl>(m)) {
      flatten(sep->conv.ptr(), join(name, "conv"), out);
    } else {
      out.emplace_back(name, m);
    }
  }

  torch::Tensor prepare_weight(torch::Tensor w, torch::ScalarType dtype) const {
    w = w.to(dtype);
    return channels_last_ ? w.contiguous(at::MemoryFormat::ChannelsLast) : w.contiguous();
  }

  static bool is_skippable(const ModulePtr& m) {
    return std::dynamic_pointer_cast<torch::nn::DropoutImpl>(m) || std::dynamic_pointer_cast<torch::nn::IdentityImpl>(m);
  }

  // A pad layer's (amount, mode); amount -1 when `m` is no pad layer, -2 for one the compiler
  // cannot lower (asymmetric, or a non-zero constant), which runs eagerly.
  static std::pair<int64_t, PadMode> pad_of(const ModulePtr& m) {
    auto symmetric = [](const torch::ExpandingArray<4>& p) -> int64_t {
      const auto* v = p->data();
      return v[0] == v[1] && v[0] == v[2] && v[0] == v[3] ? v[0] : -2;
    };
    if (auto r = std::dynamic_pointer_cast<torch::nn::ReflectionPad2dImpl>(m)) {
      return {symmetric(r->options.padding()), PadMode::reflect};
    }
    if (auto r = std::dynamic_pointer_cast<torch::nn::ReplicationPad2dImpl>(m)) {
      return {symmetric(r->options.padding()), PadMode::replicate};
    }
    if (auto c = std::dynamic_pointer_cast<torch::nn::ConstantPad2dImpl>(m)) {
      if (c->options.value() != 0.0) return {-2, PadMode::zero};
      return {symmetric(c->options.padding()), PadMode::zero};
    }
    return {-1, PadMode::zero};
  }

  static std::pair<Act, double> act_of(const ModulePtr& m) {
    if (std::dynamic_pointer_cast<torch::nn::ReLUImpl>(m)) return {Act::relu, 0.0};
    if (auto l = std::dynamic_pointer_cast<torch::nn::LeakyReLUImpl>(m)) return {Act::leaky_relu, l->options.negative_slope()};
    if (std::dynamic_pointer_cast<torch::nn::TanhImpl>(m)) return {Act::tanh, 0.0};
    return {Act::none, 0.0};
  }

  static bool instance_norm(const ModulePtr& m, NormSpec* spec) {
    auto in = std::dynamic_pointer_cast<torch::nn::InstanceNorm2dImpl>(m);
    if (!in || in->options.track_running_stats()) return false;
    spec->kind = NormSpec::Kind::instance;
    spec->eps = in->options.eps();
    if (in->options.affine()) {
      spec->gamma = in->weight.detach().to(torch::kFloat).clone();
      spec->beta = in->bias.detach().to(torch::kFloat).clone();
    }
    return true;
  }

  // Parses the norm and activation following index i (if any) into spec / act; returns the
  // index after them. `conv` (when given) gets a running-stats norm folded into its weights.
  struct Tail {
    NormSpec norm;
    Act act = Act::none;
    double slope = 0;
    std::string text;
  };
  size_t parse_tail(const Layers& layers, size_t i, torch::Tensor* fold_weight, torch::Tensor* fold_bias,
                    int64_t out_dim, Tail* tail) {
    const auto affine = i < layers.size() ? running_norm_affine(*layers[i].second) : std::nullopt;
    if (affine) {
      if (fold_weight) {
        ConvWeights folded = fold_affine_into_conv(*fold_weight, *fold_bias, *affine, out_dim);
        *fold_weight = std::move(folded.weight);
        *fold_bias = std::move(folded.bias);
        tail->text += " +bn(folded)";
      } else {
        tail->norm.kind = NormSpec::Kind::affine;
        tail->norm.scale = affine->scale.to(dtype_).view({1, -1, 1, 1});
        tail->norm.shift = affine->shift.to(dtype_).view({1, -1, 1, 1});
        tail->text += " +bn";
      }
      ++i;
    } else if (i < layers.size() && instance_norm(layers[i].second, &tail->norm)) {
      // The norm subtracts the per-channel mean, so a bias before it changes nothing.
      if (fold_bias) *fold_bias = torch::Tensor();
      tail->text += tail->norm.gamma.defined() ? " +in(affine)" : " +in";
      ++i;
    } else if (i < layers.size() && is_identity_norm(layers[i].second)) {
      ++i;
    }
    while (i < layers.size() && is_skippable(layers[i].second)) ++i;
    if (i < layers.size()) {
      const auto [act, slope] = act_of(layers[i].second);
      if (act != Act::none) {
        tail->act = act;
        tail->slope = slope;
        tail->text += act_text(act);
        ++i;
      }
    }
    return i;
  }

  static bool is_identity_norm(const ModulePtr& m) { return std::dynamic_pointer_cast<torch::nn::IdentityImpl>(m) != nullptr; }

  static torch::nn::detail::ConvNdOptions<2> conv_options(const ModulePtr& m) {
    if (auto c = std::dynamic_pointer_cast<torch::nn::Conv2dImpl>(m)) return c->options;
    return std::dynamic_pointer_cast<torch::nn::ConvTranspose2dImpl>(m)->options;
  }

  // A Conv2d / ConvTranspose2d the conv steps cover: explicit zero padding, ungrouped if transposed.
  static bool is_lowerable_conv(const ModulePtr& m) {
    if (!std::dynamic_pointer_cast<torch::nn::Conv2dImpl>(m) && !std::dynamic_pointer_cast<torch::nn::ConvTranspose2dImpl>(m)) {
      return false;
    }
    const auto o = conv_options(m);
    return compat::variant_get_if<torch::ExpandingArray<2>>(o.padding()) != nullptr &&
           compat::variant_holds<torch::enumtype::kZeros>(o.padding_mode()) && (!o.transposed() || o.groups() == 1);
  }

  Step conv_step(const ModulePtr& m, const std::string& name, int64_t pre_pad, PadMode pad_mode, const Layers& layers,
                 size_t* next) {
    const auto o = conv_options(m);
    torch::Tensor weight, bias;
    if (auto c = std::dynamic_pointer_cast<torch::nn::Conv2dImpl>(m)) {
      weight = c->weight, bias = c->bias;
    } else if (auto t = std::dynamic_pointer_cast<torch::nn::ConvTranspose2dImpl>(m)) {
      weight = t->weight, bias = t->bias;
    }
    const auto* explicit_padding = compat::variant_get_if<torch::ExpandingArray<2>>(o.padding());
    const bool transposed = o.transposed();
    std::vector<int64_t> padding = to_vec(*explicit_padding);
    if (pre_pad > 0 && pad_mode == PadMode::zero) {  // a zero pad layer is the conv's own padding
      for (auto& p : padding) p += pre_pad;
      pre_pad = 0;
    }
    weight = weight.detach().clone();
    bias = bias.defined() ? bias.detach().clone() : torch::Tensor();
    Tail tail;
    // Out channels: dim 0 of a conv weight, dim 1 of a transposed conv's (groups 1 there).
    *next = parse_tail(layers, *next, &weight, &bias, transposed ? 1 : 0, &tail);
    const std::vector<int64_t> stride_v = to_vec(o.stride()), dilation_v = to_vec(o.dilation()),
                               out_pad_v = to_vec(o.output_padding());
    // The generators' up-sampling (3x3, stride 2, padding 1, output padding 1) is rewritten as a
    // 2x2 stride-1 conv to 4x the channels and a pixel shuffle: LibTorch 1.13's CPU
    // conv_transpose2d runs as a BLAS gemm plus col2im (1.4-1.8x slower than this oneDNN conv
    // here) and in bf16 it misroutes to the forward conv and fails. Any other transposed conv
    // computes in fp32.
    const bool sub_pixel = transposed && o.groups() == 1 && weight.size(2) == 3 &&
                           weight.size(3) == 3 && stride_v == std::vector<int64_t>{2, 2} &&
                           padding == std::vector<int64_t>{1, 1} && out_pad_v == std::vector<int64_t>{1, 1} &&
                           dilation_v == std::vector<int64_t>{1, 1} && pre_pad == 0;
    if (sub_pixel) return sub_pixel_step(weight, bias, name, tail);
    const bool thin_output = !transposed && o.groups() == 1 && weight.size(0) <= 4 && weight.size(2) == weight.size(3) &&
                             weight.size(2) % 2 == 1 && weight.size(2) >= 5 && stride_v == std::vector<int64_t>{1, 1} &&
                             dilation_v == std::vector<int64_t>{1, 1};
    if (thin_output) return space_to_depth_step(weight, bias, padding, pre_pad, pad_mode, name, tail);
    const bool fp32_island = transposed && dtype_ == torch::kBFloat16;
    const auto compute_dtype = fp32_island ? torch::kFloat : dtype_;
    const auto w = prepare_weight(weight, compute_dtype);
    const auto b = bias.defined() ? bias.to(compute_dtype).contiguous() : torch::Tensor();
    const auto out_dtype = dtype_;
    const std::vector<int64_t> stride = to_vec(o.stride()), dilation = to_vec(o.dilation()),
                               out_pad = to_vec(o.output_padding());
    const int64_t groups = o.groups();
    std::ostringstream text;
    text << name << ": " << (transposed ? "convT " : "conv ") << w.size(2) << "x" << w.size(3) << " s" << stride[0]
         << " " << (transposed ? w.size(0) : w.size(1) * groups) << "->" << (transposed ? w.size(1) * groups : w.size(0));
    if (groups > 1) text << " g" << groups;
    if (pre_pad > 0) text << " +" << pad_name(pad_mode) << pre_pad;
    text << tail.text;
    if (fp32_island) text << " (fp32)";
    Fn fn = [w, b, stride, padding, dilation, out_pad, groups, transposed, pre_pad, pad_mode, tail, fp32_island,
             out_dtype](torch::Tensor x) {
      if (pre_pad > 0) x = pad_keep_format(x, pre_pad, pad_mode);
      if (fp32_island) x = x.to(torch::kFloat);
      auto y = transposed ? at::conv_transpose2d(x, w, b, stride, padding, out_pad, groups, dilation)
                          : at::conv2d(x, w, b, stride, padding, dilation, groups);
      if (fp32_island) y = y.to(out_dtype);
      return norm_act_(std::move(y), tail.norm, tail.act, tail.slope);
    };
    return {transposed ? StepKind::ConvTranspose : StepKind::Conv, text.str(), std::move(fn), {}};
  }

  // y[2m + a] of a 3-tap, stride-2 transposed conv (padding 1) reads x[m] through tap 1 when
  // a = 0, and x[m] through tap 2 plus x[m + 1] through tap 0 when a = 1: per output phase
  // (a, b) a 2x2 conv over x padded by one zero row / column at the bottom / right.
  Step sub_pixel_step(const torch::Tensor& weight_t, const torch::Tensor& bias, const std::string& name,
                      const Tail& tail) {
    const int64_t cin = weight_t.size(0), cout = weight_t.size(1);
    const auto wt = weight_t.to(torch::kDouble);
    auto w = torch::zeros({cout, 2, 2, cin, 2, 2}, torch::kDouble);  // [co, a, b, ci, di, dj]
    const int64_t taps[2][2] = {{1, -1}, {2, 0}};                     // [phase][offset] -> kernel tap
    for (int a = 0; a < 2; ++a) {
      for (int di = 0; di < 2; ++di) {
        if (taps[a][di] < 0) continue;
        for (int b = 0; b < 2; ++b) {
          for (int dj = 0; dj < 2; ++dj) {
            if (taps[b][dj] < 0) continue;
            // wt[:, :, kh, kw] is [ci, co]
            w.select(1, a).select(1, b).select(2, di).select(2, dj).copy_(wt.select(2, taps[a][di]).select(2, taps[b][dj]).t());
          }
        }
      }
    }
    const auto wc = prepare_weight(w.reshape({cout * 4, cin, 2, 2}), dtype_);
    const auto bc = phase_bias(bias, dtype_);
    const bool channels_last = channels_last_;
    std::ostringstream text;
    text << name << ": convT 3x3 s2 " << cin << "->" << cout << " as conv 2x2 + pixel shuffle" << tail.text;
    Fn fn = [wc, bc, tail, channels_last](torch::Tensor x) {
      auto y = at::conv2d(at::constant_pad_nd(x, {0, 1, 0, 1}, 0.0), wc, bc);
      y = at::pixel_shuffle(y, 2);
      y = channels_last ? y.contiguous(at::MemoryFormat::ChannelsLast) : y.contiguous();
      return norm_act_(std::move(y), tail.norm, tail.act, tail.slope);
    };
    return {StepKind::ConvTransposeAsSubPixel, text.str(), std::move(fn), {}};
  }

  // A stride-1 k x k conv to very few channels (the generators' last 7x7 conv to RGB) leaves
  // oneDNN's 16-lane output-channel vectors mostly empty. On the input folded 2x2 into channels
  // (space to depth) it is a ((k + 1) / 2)-tap conv to 4x the channels, one per output phase
  // (a, b), followed by a pixel shuffle: 2.3x faster for 18 -> 3 channels at 7x7 here.
  //   y[o, 2i + a, 2j + b] = sum_{c, u, v, p, q} w[o, c, 2u + p - a, 2v + q - b] * X[(p, q, c), i + u, j + v]
  // with X[(p, q, c), I, J] = x_padded[c, 2I + p, 2J + q]. Inputs of odd padded size fall back to
  // the direct conv.
  Step space_to_depth_step(const torch::Tensor& weight, const torch::Tensor& bias, const std::vector<int64_t>& padding,
                           int64_t pre_pad, PadMode pad_mode, const std::string& name, const Tail& tail) {
    const int64_t cout = weight.size(0), cin = weight.size(1), k = weight.size(2), taps = (k + 1) / 2;
    const auto wd = weight.to(torch::kDouble);
    auto w = torch::zeros({cout, 2, 2, 2, 2, cin, taps, taps}, torch::kDouble);  // [o, a, b, p, q, c, u, v]
    for (int a = 0; a < 2; ++a) {
      for (int b = 0; b < 2; ++b) {
        for (int p = 0; p < 2; ++p) {
          for (int q = 0; q < 2; ++q) {
            for (int64_t u = 0; u < taps; ++u) {
              for (int64_t v = 0; v < taps; ++v) {
                const int64_t di = 2 * u + p - a, dj = 2 * v + q - b;
                if (di < 0 || di >= k || dj < 0 || dj >= k) continue;
                w.select(1, a).select(1, b).select(1, p).select(1, q).select(2, u).select(2, v).copy_(wd.select(2, di).select(2, dj));
              }
            }
          }
        }
      }
    }
    const auto ws = prepare_weight(w.reshape({cout * 4, cin * 4, taps, taps}), dtype_);
    const auto bs = phase_bias(bias, dtype_);
    const auto wdirect = prepare_weight(weight, dtype_);
    const auto bdirect = bias.defined() ? bias.to(dtype_).contiguous() : torch::Tensor();
    const bool channels_last = channels_last_;
    std::ostringstream text;
    text << name << ": conv " << k << "x" << k << " s1 " << cin << "->" << cout;
    if (pre_pad > 0) text << " +" << pad_name(pad_mode) << pre_pad;
    text << " as space-to-depth conv " << taps << "x" << taps << " + pixel shuffle" << tail.text;
    Fn fn = [ws, bs, wdirect, bdirect, padding, pre_pad, pad_mode, tail, channels_last](torch::Tensor x) {
      if (pre_pad > 0) x = pad_keep_format(x, pre_pad, pad_mode);
      if (padding[0] > 0 || padding[1] > 0) {
        x = at::constant_pad_nd(x, {padding[1], padding[1], padding[0], padding[0]}, 0.0).contiguous(x.suggest_memory_format());
      }
      const int64_t n = x.size(0), c = x.size(1), h = x.size(2), width = x.size(3);
      torch::Tensor y;
      if (h % 2 == 0 && width % 2 == 0) {
        // NHWC [n, h, w, c] -> [n, h/2, w/2, (p, q, c)]: contiguous runs of 2c values.
        auto folded = x.permute({0, 2, 3, 1})
                          .reshape({n, h / 2, 2, width / 2, 2 * c})
                          .permute({0, 1, 3, 2, 4})
                          .contiguous()
                          .view({n, h / 2, width / 2, 4 * c})
                          .permute({0, 3, 1, 2});
        if (!channels_last) folded = folded.contiguous();
        y = at::pixel_shuffle(at::conv2d(folded, ws, bs), 2);
      } else {
        y = at::conv2d(x, wdirect, bdirect);
      }
      y = channels_last ? y.contiguous(at::MemoryFormat::ChannelsLast) : y.contiguous();
      return norm_act_(std::move(y), tail.norm, tail.act, tail.slope);
    };
    return {StepKind::SpaceToDepthConv, text.str(), std::move(fn), {}};
  }

  Plan compile(const Layers& layers) {
    Plan plan;
    size_t i = 0;
    while (i < layers.size()) {
      const auto& [name, m] = layers[i];
      if (is_skippable(m)) {
        ++i;
        continue;
      }
      const auto [pad, pad_mode] = pad_of(m);
      if (pad >= 0) {
        size_t j = i + 1;
        if (j < layers.size() && std::dynamic_pointer_cast<torch::nn::Conv2dImpl>(layers[j].second) &&
            is_lowerable_conv(layers[j].second)) {
          size_t next = j + 1;
          plan.push_back(conv_step(layers[j].second, layers[j].first, pad, pad_mode, layers, &next));
          i = next;
        } else if (pad > 0) {
          plan.push_back({StepKind::Pad, name + ": " + pad_name(pad_mode) + " pad " + std::to_string(pad),
                          [pad = pad, mode = pad_mode](torch::Tensor x) { return pad_keep_format(x, pad, mode); }, {}});
          ++i;
        } else {
          ++i;
        }
        continue;
      }
      if (is_lowerable_conv(m)) {
        size_t next = i + 1;
        plan.push_back(conv_step(m, name, 0, PadMode::zero, layers, &next));
        i = next;
        continue;
      }
      Tail tail;
      const size_t after = parse_tail(layers, i, nullptr, nullptr, 0, &tail);
      if (after > i) {  // a norm and/or activation on its own
        plan.push_back({StepKind::NormAct, name + ":" + tail.text,
                        [tail](torch::Tensor x) { return norm_act_(x.clone(), tail.norm, tail.act, tail.slope); }, {}});
        i = after;
        continue;
      }
      plan.push_back(block_step(m, name));
      ++i;
    }
    return plan;
  }

  static std::string indent(const Plan& plan) {
    std::string s;
    for (const auto& step : plan) s += "\n    " + step.text;
    return s;
  }

  // Residual and multi-branch blocks: their inner layers compile to sub-plans.
  Step block_step(const ModulePtr& m, const std::string& name) {
    if (auto r = std::dynamic_pointer_cast<ResnetBlockImpl>(m)) return residual(compile_children(r->conv_block.ptr(), join(name, "conv_block")), name);
    if (auto r = std::dynamic_pointer_cast<MobileResnetBlockImpl>(m)) {
      return residual(compile_children(r->conv_block.ptr(), join(name, "conv_block")), name);
    }
    if (auto b = std::dynamic_pointer_cast<InvertedResidualChannelsImpl>(m)) return inception_block(*b, name);
    if (auto u = std::dynamic_pointer_cast<UnetSkipConnectionBlockImpl>(m)) return unet_block(*u, name);
    return eager_layer(m, name);
  }

  // A layer the compiler has no lowering for (a new architecture's block, a conv with 'same'
  // padding, an asymmetric pad) runs through its own forward, without fused kernels.
  Step eager_layer(const ModulePtr& m, const std::string& name) {
    const auto it = callable_.find(m.get());
    if (it == callable_.end()) throw NoCallableForward("inference: '" + name + "' (" + m->name() + ") is no Sequential's child");
    auto any = it->second;
    return eager_step(m, [any](torch::Tensor x) mutable { return any.forward(x); },
                      name + ": eager " + m->name(), dtype_, channels_last_);
  }

  Step residual(Plan body, const std::string& name) {
    auto shared = std::make_shared<Plan>(std::move(body));
    return {StepKind::Residual, name + ": residual" + indent(*shared),
            [shared](torch::Tensor x) {
              auto y = run_plan(*shared, x);
              return y.is_same(x) ? y + x : y.add_(x);
            },
            kinds_of(*shared)};
  }

  // --- CAT inception block with foldable norms (BatchNorm in eval, or none) ---------------
  // Its up to 15 small convs become 7, or 5 with thin res branches (the student's branches are
  // 8-16 channels wide, so per-call costs, not MACs, dominate there): every 1x1 that reads the
  // block input is one conv; the depthwise convs are one 5x5 depthwise conv (3x3 / 1x1 kernels
  // embedded at the centre: reflect, replicate and zero pads agree at distance 1, so this is
  // exact) that passes the res_k1 channels through; every 1x1 that writes the block output is one
  // conv over the concatenated channels; thin k x k res branches are one conv pair; pw_bn is
  // folded into all the output convs.
  struct FoldedConv {
    torch::Tensor w, b;  // float64 until prepared; b always defined
  };

  static ModulePtr child(const ModulePtr& m, size_t i) { return m->children().at(i); }

  // conv weight / bias with the eval-mode norm `norm` folded in; false when `norm` is neither a
  // running-statistics norm nor absent (an InstanceNorm: statistics per image).
  static bool fold_conv_norm(const ModulePtr& conv_m, const ModulePtr& norm, FoldedConv* out) {
    auto conv = std::dynamic_pointer_cast<torch::nn::Conv2dImpl>(conv_m);
    if (!conv) return false;
    if (const auto affine = norm ? running_norm_affine(*norm) : std::nullopt) {
      ConvWeights folded = fold_affine_into_conv(conv->weight, conv->bias, *affine, 0);
      *out = {folded.weight, folded.bias};
      return true;
    }
    if (norm && !is_identity_norm(norm)) return false;
    auto w = conv->weight.detach().to(torch::kDouble);
    auto b = conv->bias.defined() ? conv->bias.detach().to(torch::kDouble) : torch::zeros({w.size(0)}, w.options());
    *out = {w, b};
    return true;
  }

  std::optional<Step> fused_inception_block(InvertedResidualChannelsImpl& blk, const std::string& name) {
    torch::Tensor pw_scale, pw_shift;
    if (const auto pw_affine = running_norm_affine(*blk.pw_bn.ptr())) {
      pw_scale = pw_affine->scale, pw_shift = pw_affine->shift;
    } else if (!is_identity_norm(blk.pw_bn.ptr())) {
      return std::nullopt;
    }
    PadMode mode = PadMode::zero;
    std::vector<FoldedConv> dw_convs, dw_out, res1_out;
    FoldedConv res1_in;
    bool has_res1 = false;
    struct Res {
      int64_t k;
      FoldedConv in, out;
    };
    std::vector<Res> res;
    for (const auto& branch : blk.res_ops->children()) {
      // [pad, [conv, norm, relu], dropout, pad, conv]
      const auto cbr = child(branch, 1);
      FoldedConv in, out;
      if (!fold_conv_norm(child(cbr, 0), child(cbr, 1), &in) || !fold_conv_norm(child(branch, 4), nullptr, &out)) {
        return std::nullopt;
      }
      const auto [pad, pad_mode] = pad_of(child(branch, 0));
      if (pad < -1) return std::nullopt;
      if (pad > 0) mode = pad_mode;
      const int64_t k = in.w.size(2);
      if (k == 1) {
        res1_in = in;
        res1_out.push_back(out);
        has_res1 = true;
      } else {
        res.push_back({k, in, out});
      }
    }
    // Thin k x k res branches (3x3 and 5x5 in CAT) run as one conv pair at the largest k with each
    // branch's kernels centred: pad rings at distance d agree whatever the pad width, so this is
    // exact. It pays only for branches narrower than one 16-lane vector, whose empty lanes and
    // per-call costs outweigh the 3x3 branch's extra MACs at 5x5 (the pruned student: 1.7x
    // faster blocks); the ngf-64 teacher's 42-wide branches ran 1.4x slower merged.
    const bool thin_res = std::all_of(res.begin(), res.end(), [](const Res& r) { return r.in.w.size(0) < 16; });
    if (res.size() > 1 && thin_res) {
      int64_t k = 0, mid = 0;
      for (const auto& r : res) k = std::max(k, r.k), mid += r.in.w.size(0);
      const auto opts = res.front().in.w.options();
      FoldedConv in{torch::zeros({mid, res.front().in.w.size(1), k, k}, opts), torch::zeros({mid}, opts)};
      FoldedConv out{torch::zeros({res.front().out.w.size(0), mid, k, k}, opts),
                     torch::zeros({res.front().out.w.size(0)}, opts)};
      int64_t at_ch = 0;
      for (const auto& r : res) {
        const int64_t n = r.in.w.size(0);
        centre(in.w.narrow(0, at_ch, n), r.k).copy_(r.in.w);
        in.b.narrow(0, at_ch, n).copy_(r.in.b);
        centre(out.w.narrow(1, at_ch, n), r.k).copy_(r.out.w);
        out.b += r.out.b;
        at_ch += n;
      }
      res = {{k, in, out}};
    }
    std::vector<FoldedConv> stage1;  // the 1x1 convs on the block input: [dw mids..., res_k1 mid]
    for (const auto& branch : blk.dw_ops->children()) {
      // [[conv1x1, norm, relu], pad, [dwconv, norm, relu], dropout, conv1x1]
      FoldedConv in, dw, out;
      if (!fold_conv_norm(child(child(branch, 0), 0), child(child(branch, 0), 1), &in) ||
          !fold_conv_norm(child(child(branch, 2), 0), child(child(branch, 2), 1), &dw) ||
          !fold_conv_norm(child(branch, 4), nullptr, &out)) {
        return std::nullopt;
      }
      const auto [pad, pad_mode] = pad_of(child(branch, 1));
      if (pad < -1) return std::nullopt;
      if (pad > 0) mode = pad_mode;
      stage1.push_back(in);
      dw_convs.push_back(dw);
      dw_out.push_back(out);
    }
    if (has_res1) stage1.push_back(res1_in);

    const bool has_pw = !stage1.empty();
    // Output convs with pw_bn folded: out = (sum_i conv_i(h_i)) * scale + shift; each conv keeps
    // its own scaled bias and the first one also carries the shift.
    bool shift_added = false;
    auto fold_pw = [&](FoldedConv c) {
      if (pw_scale.defined()) {
        c.w = c.w * pw_scale.view({-1, 1, 1, 1});
        c.b = c.b * pw_scale;
        if (!shift_added) c.b = c.b + pw_shift;
        shift_added = true;
      }
      return c;
    };
    auto prepare = [this](const FoldedConv& c) {
      return std::make_pair(prepare_weight(c.w, dtype_), c.b.to(dtype_).contiguous());
    };
    std::ostringstream text;
    text << name << ": inception block (fused, " << pad_name(mode) << " pads)";
    torch::Tensor w1, b1, w2, b2, w3, b3;
    int64_t k2 = 1, groups2 = 0;
    if (has_pw) {
      std::vector<torch::Tensor> ws, bs;
      for (const auto& c : stage1) ws.push_back(c.w), bs.push_back(c.b);
      std::tie(w1, b1) = prepare({at::cat(ws, 0), at::cat(bs, 0)});
      const int64_t channels = w1.size(0);
      text << "\n    1x1 " << w1.size(1) << "->" << channels << " +bn(folded)+relu";
      if (!dw_convs.empty()) {
        for (const auto& c : dw_convs) k2 = std::max(k2, c.w.size(2));
        auto w = torch::zeros({channels, 1, k2, k2}, torch::kDouble);
        auto b = torch::zeros({channels}, torch::kDouble);
        int64_t at_ch = 0;
        for (const auto& c : dw_convs) {
          const int64_t n = c.w.size(0);
          centre(w.narrow(0, at_ch, n), c.w.size(2)).copy_(c.w);
          b.narrow(0, at_ch, n).copy_(c.b);
          at_ch += n;
        }
        // res_k1's channels pass through (they are already >= 0, so the ReLU keeps them).
        for (int64_t ch = at_ch; ch < channels; ++ch) w[ch][0][k2 / 2][k2 / 2] = 1.0;
        std::tie(w2, b2) = prepare({w, b});
        groups2 = channels;
        text << "\n    depthwise " << k2 << "x" << k2 << " " << channels << " +bn(folded)+relu";
      }
      std::vector<torch::Tensor> ws3;
      torch::Tensor bias3;
      for (const auto* group : {&dw_out, &res1_out}) {
        for (const auto& c : *group) {
          ws3.push_back(c.w);
          bias3 = bias3.defined() ? bias3 + c.b : c.b;
        }
      }
      std::tie(w3, b3) = prepare(fold_pw({at::cat(ws3, 1), bias3}));
      text << "\n    1x1 " << w3.size(1) << "->" << w3.size(0) << " +pw_bn(folded)";
    }
    struct ResPrepared {
      int64_t k;
      torch::Tensor w_in, b_in, w_out, b_out;
    };
    std::vector<ResPrepared> res_prepared;
    for (auto& r : res) {
      ResPrepared p{r.k, {}, {}, {}, {}};
      std::tie(p.w_in, p.b_in) = prepare(r.in);
      std::tie(p.w_out, p.b_out) = prepare(fold_pw(r.out));
      text << "\n    res " << r.k << "x" << r.k << " " << p.w_in.size(1) << "->" << p.w_in.size(0) << "->"
           << p.w_out.size(0) << " +bn(folded)+relu";
      res_prepared.push_back(std::move(p));
    }
    Fn fn = [w1, b1, w2, b2, w3, b3, k2, groups2, mode, res_prepared](torch::Tensor x) {
      torch::Tensor sum;
      if (w1.defined()) {
        auto h = at::conv2d(x, w1, b1).relu_();
        if (w2.defined()) {
          if (k2 > 1) h = pad_keep_format(h, k2 / 2, mode);
          h = at::conv2d(h, w2, b2, std::vector<int64_t>{1, 1}, std::vector<int64_t>{0, 0}, std::vector<int64_t>{1, 1}, groups2).relu_();
        }
        sum = at::conv2d(h, w3, b3);
      }
      for (const auto& r : res_prepared) {
        auto h = at::conv2d(pad_keep_format(x, r.k / 2, mode), r.w_in, r.b_in).relu_();
        auto y = at::conv2d(pad_keep_format(h, r.k / 2, mode), r.w_out, r.b_out);
        sum = sum.defined() ? sum.add_(y) : y;
      }
      if (!sum.defined()) return x;
      return sum.add_(x);
    };
    return Step{StepKind::InceptionFused, text.str(), std::move(fn), {}};
  }

  Step inception_block(InvertedResidualChannelsImpl& b, const std::string& name) {
    if (auto fused = fused_inception_block(b, name)) return *fused;
    auto branches = std::make_shared<std::vector<Plan>>();
    std::string text = name + ": inception block";
    for (const auto& item : b.res_ops->named_children()) {
      branches->push_back(compile_children(item.value(), join(name, "res_ops." + item.key())));
      text += indent(branches->back());
    }
    for (const auto& item : b.dw_ops->named_children()) {
      branches->push_back(compile_children(item.value(), join(name, "dw_ops." + item.key())));
      text += indent(branches->back());
    }
    Tail tail;
    Layers pw{{join(name, "pw_bn"), b.pw_bn.ptr()}};
    parse_tail(pw, 0, nullptr, nullptr, 0, &tail);
    text += "\n    " + join(name, "pw_bn") + ":" + tail.text;
    std::vector<StepKind> inner;
    for (const auto& plan : *branches) {
      const auto kinds = kinds_of(plan);
      inner.insert(inner.end(), kinds.begin(), kinds.end());
    }
    return {StepKind::InceptionBranches, text, [branches, tail](torch::Tensor x) {
              if (branches->empty()) return x;
              torch::Tensor sum;
              for (const auto& plan : *branches) {
                auto y = run_plan(plan, x);
                if (!sum.defined()) {
                  sum = y.is_same(x) ? y.clone() : y;
                } else {
                  sum.add_(y);
                }
              }
              return norm_act_(std::move(sum), tail.norm, tail.act, tail.slope).add_(x);
            },
            std::move(inner)};
  }

  // middle / innermost: cat([LeakyReLU(x), rest(LeakyReLU(x))]); outermost: the layers in line.
  Step unet_block(UnetSkipConnectionBlockImpl& u, const std::string& name) {
    Layers layers;
    flatten(u.model.ptr(), join(name, "model"), layers);
    if (!layers.empty() && act_of(layers.front().second).first == Act::leaky_relu) {
      const double slope = act_of(layers.front().second).second;
      auto rest = std::make_shared<Plan>(compile(Layers(layers.begin() + 1, layers.end())));
      return {StepKind::UnetSkip, name + ": skip block (lrelu, cat)" + indent(*rest),
              [rest, slope](torch::Tensor x) {
                auto l = at::leaky_relu(x, slope);
                return at::cat({l, run_plan(*rest, l)}, 1);
              },
              kinds_of(*rest)};
    }
    auto body = std::make_shared<Plan>(compile(layers));
    return {StepKind::UnetOuter, name + ": outer block" + indent(*body),
            [body](torch::Tensor x) { return run_plan(*body, x); }, kinds_of(*body)};
  }

  torch::ScalarType dtype_;
  bool channels_last_;
  // The forward of each layer met inside a Sequential, for eager steps.
  std::unordered_map<const Module*, torch::nn::AnyModule> callable_;
};

}  // namespace

struct InferenceRunner::Impl {
  ArchConfig config;
  InferenceOptions options;
  torch::Device device{torch::kCPU};
  torch::ScalarType dtype = torch::kFloat;
  Plan plan;
};

InferenceRunner::InferenceRunner(GeneratorImpl& generator, InferenceOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->config = generator.config();
  impl_->options = options;
  const auto params = generator.parameters();
  if (!params.empty()) impl_->device = params.front().device();
  impl_->dtype = options.precision == Precision::bf16 ? torch::kBFloat16 : torch::kFloat;
  if (options.precision == Precision::bf16 && !bf16_convs_run(impl_->device)) {
    throw UsageError("--precision bf16 is unavailable here: oneDNN refuses bf16 convs (is ONEDNN_MAX_CPU_ISA or "
                     "DNNL_MAX_CPU_ISA set below AVX512_CORE?); use --precision fp32");
  }
  torch::NoGradGuard no_grad;
  Compiler compiler(impl_->dtype, options.channels_last);
  // Every generator's forward runs its registered children in order (resnet: model; inception:
  // down_sampling, features, up_sampling; unet: the outermost skip block).
  const auto self = std::dynamic_pointer_cast<GeneratorImpl>(generator.shared_from_this());
  try {
    impl_->plan = compiler.compile_children(self, "");
  } catch (const NoCallableForward& e) {
    // An unknown block registered outside any Sequential has no forward to call alone: the
    // generator's own forward runs as one eager step.
    impl_->plan = {eager_step(self, [self](torch::Tensor x) { return self->forward(std::move(x)); },
                              std::string("generator: eager (") + e.what() + ")", impl_->dtype, options.channels_last)};
  }
}

InferenceRunner::~InferenceRunner() = default;
InferenceRunner::InferenceRunner(InferenceRunner&&) noexcept = default;
InferenceRunner& InferenceRunner::operator=(InferenceRunner&&) noexcept = default;

torch::Tensor InferenceRunner::forward(const torch::Tensor& x) const {
  require(x.dim() == 4 && x.size(1) == impl_->config.input_nc,
          "inference input must be [N, " + std::to_string(impl_->config.input_nc) + ", H, W]");
  c10::InferenceMode guard;
  auto in = x.to(impl_->device, impl_->dtype);
  in = impl_->options.channels_last ? in.contiguous(at::MemoryFormat::ChannelsLast) : in.contiguous();
  auto y = run_plan(impl_->plan, in);
  return y.to(torch::kFloat).contiguous();
}

const ArchConfig& InferenceRunner::config() const { return impl_->config; }
const InferenceOptions& InferenceRunner::options() const { return impl_->options; }
torch::Device InferenceRunner::device() const { return impl_->device; }
size_t InferenceRunner::num_steps() const { return impl_->plan.size(); }

std::vector<StepKind> InferenceRunner::step_kinds() const {
  std::vector<StepKind> kinds;
  for (const auto& step : impl_->plan) kinds.push_back(step.kind);
  return kinds;
}

std::vector<StepKind> InferenceRunner::all_step_kinds() const { return kinds_of(impl_->plan); }

std::vector<std::pair<std::string, double>> InferenceRunner::profile_steps(const torch::Tensor& x) const {
  c10::InferenceMode guard;
  auto y = x.to(impl_->device, impl_->dtype);
  y = impl_->options.channels_last ? y.contiguous(at::MemoryFormat::ChannelsLast) : y.contiguous();
  std::vector<std::pair<std::string, double>> times;
  for (const auto& step : impl_->plan) {
    const auto start = std::chrono::steady_clock::now();
    y = step.fn(std::move(y));
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    times.emplace_back(step.text.substr(0, step.text.find('\n')), ms);
  }
  return times;
}

std::vector<std::string> InferenceRunner::describe() const {
  std::vector<std::string> lines;
  for (const auto& step : impl_->plan) lines.push_back(step.text);
  return lines;
}

}  // namespace ganlite::nn
