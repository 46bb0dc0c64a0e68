// A lowered graph, after the runner's passes, compiled to runtime steps: convs (direct, sub-pixel,
// space-to-depth) with their pads, norms and activations, and norm / activation steps of their own.
// Weights are converted here, once, to the compute dtype and memory format.
#include <torch/torch.h>

#include <sstream>

#include "ganlite/nn/inference_steps.h"
#include "ganlite/util/error.h"

namespace ganlite::nn::inference_detail {

using lowering::ConvRewrite;
using lowering::Layer;
using lowering::LayerKind;
using lowering::PadMode;

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

torch::Tensor prepare_weight(const torch::Tensor& w, torch::ScalarType dtype, bool channels_last) {
  const auto converted = w.to(dtype);
  return channels_last ? converted.contiguous(at::MemoryFormat::ChannelsLast) : converted.contiguous();
}

const char* pad_name(PadMode m) { return m == PadMode::reflect ? "reflect" : m == PadMode::replicate ? "replicate" : "zero"; }

std::string tail_text(bool norm_folded, const lowering::NormSpec& norm, const lowering::ActSpec& act) {
  std::string text = norm_folded ? " +bn(folded)" : "";
  if (norm.kind == lowering::NormSpec::Kind::running) text += " +bn";
  if (norm.kind == lowering::NormSpec::Kind::instance) text += norm.gamma.defined() ? " +in(affine)" : " +in";
  switch (act.kind) {
    case lowering::Act::relu: return text + "+relu";
    case lowering::Act::leaky_relu: return text + "+lrelu";
    case lowering::Act::tanh: return text + "+tanh";
    case lowering::Act::none: break;
  }
  return text;
}

namespace {

// What a conv step needs of the ConvSpec besides its weights (so the step holds no float64 copies).
struct Geometry {
  std::vector<int64_t> stride, padding, dilation, output_padding;
  int64_t groups;
  bool transposed;
  lowering::PadSpec pre_pad;
};

Geometry geometry(const lowering::ConvSpec& c) {
  return {c.stride, c.padding, c.dilation, c.output_padding, c.groups, c.transposed, c.pre_pad};
}

torch::Tensor prepare_bias(const torch::Tensor& b, torch::ScalarType dtype) {
  return b.defined() ? b.to(dtype).contiguous() : torch::Tensor();
}

std::string pre_pad_text(const lowering::ConvSpec& c) {
  if (c.pre_pad.amount <= 0) return "";
  return std::string(" +") + pad_name(c.pre_pad.mode) + std::to_string(c.pre_pad.amount);
}

// Any conv or transposed conv; transposed convs compute in fp32 under bf16 (an fp32 island).
Step libtorch_conv_step(const Layer& layer, const CompileOptions& o) {
  const auto& c = layer.conv;
  const bool fp32_island = c.transposed && o.dtype == torch::kBFloat16;
  const auto compute_dtype = fp32_island ? torch::kFloat : o.dtype;
  const auto w = prepare_weight(c.weight, compute_dtype, o.channels_last);
  const auto b = prepare_bias(c.bias, compute_dtype);
  std::ostringstream text;
  text << layer.name << ": " << (c.transposed ? "convT " : "conv ") << w.size(2) << "x" << w.size(3) << " s"
       << c.stride[0] << " " << c.in_channels() << "->" << c.out_channels();
  if (c.groups > 1) text << " g" << c.groups;
  text << pre_pad_text(c) << tail_text(c.norm_folded, c.norm, c.act);
  if (fp32_island) text << " (fp32)";
  Fn fn = [w, b, c = geometry(c), tail = make_norm_act(c.norm, c.act, o.dtype), fp32_island,
           out_dtype = o.dtype](torch::Tensor x) {
    if (c.pre_pad.amount > 0) x = pad_keep_format(x, c.pre_pad.amount, c.pre_pad.mode);
    if (fp32_island) x = x.to(torch::kFloat);
    auto y = c.transposed ? at::conv_transpose2d(x, w, b, c.stride, c.padding, c.output_padding, c.groups, c.dilation)
                          : at::conv2d(x, w, b, c.stride, c.padding, c.dilation, c.groups);
    if (fp32_island) y = y.to(out_dtype);
    return norm_act_(std::move(y), tail);
  };
  return {c.transposed ? StepKind::ConvTranspose : StepKind::Conv, text.str(), std::move(fn), {}};
}

// pass_sub_pixel: a 2x2 conv over x padded by one zero row / column at the bottom / right, then a
// pixel shuffle.
Step sub_pixel_step(const Layer& layer, const CompileOptions& o) {
  const auto& c = layer.conv;
  const auto w = prepare_weight(c.rewritten_weight, o.dtype, o.channels_last);
  const auto b = prepare_bias(c.rewritten_bias, o.dtype);
  std::ostringstream text;
  text << layer.name << ": convT 3x3 s2 " << c.in_channels() << "->" << c.out_channels()
       << " as conv 2x2 + pixel shuffle" << tail_text(c.norm_folded, c.norm, c.act);
  Fn fn = [w, b, tail = make_norm_act(c.norm, c.act, o.dtype), channels_last = o.channels_last](torch::Tensor x) {
    auto y = at::conv2d(at::constant_pad_nd(x, {0, 1, 0, 1}, 0.0), w, b);
    y = at::pixel_shuffle(y, 2);
    y = channels_last ? y.contiguous(at::MemoryFormat::ChannelsLast) : y.contiguous();
    return norm_act_(std::move(y), tail);
  };
  return {StepKind::ConvTransposeAsSubPixel, text.str(), std::move(fn), {}};
}

// [n, c, h, w] (h, w even) -> [n, 4c, h/2, w/2] with channels (p, q, c): through NHWC, where the
// folded rows are contiguous runs of 2c values.
torch::Tensor space_to_depth(const torch::Tensor& x, bool channels_last) {
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), width = x.size(3);
  auto folded = x.permute({0, 2, 3, 1})
                    .reshape({n, h / 2, 2, width / 2, 2 * c})
                    .permute({0, 1, 3, 2, 4})
                    .contiguous()
                    .view({n, h / 2, width / 2, 4 * c})
                    .permute({0, 3, 1, 2});
  return channels_last ? folded : folded.contiguous();
}

// pass_space_to_depth: the conv on the input folded 2x2 into channels, then a pixel shuffle; the
// direct conv for inputs of odd padded size.
Step space_to_depth_step(const Layer& layer, const CompileOptions& o) {
  const auto& c = layer.conv;
  const auto ws = prepare_weight(c.rewritten_weight, o.dtype, o.channels_last);
  const auto bs = prepare_bias(c.rewritten_bias, o.dtype);
  const auto wdirect = prepare_weight(c.weight, o.dtype, o.channels_last);
  const auto bdirect = prepare_bias(c.bias, o.dtype);
  const int64_t k = c.weight.size(2);
  std::ostringstream text;
  text << layer.name << ": conv " << k << "x" << k << " s1 " << c.in_channels() << "->" << c.out_channels()
       << pre_pad_text(c) << " as space-to-depth conv " << ws.size(2) << "x" << ws.size(3) << " + pixel shuffle"
       << tail_text(c.norm_folded, c.norm, c.act);
  Fn fn = [ws, bs, wdirect, bdirect, c = geometry(c), tail = make_norm_act(c.norm, c.act, o.dtype),
           channels_last = o.channels_last](torch::Tensor x) {
    if (c.pre_pad.amount > 0) x = pad_keep_format(x, c.pre_pad.amount, c.pre_pad.mode);
    const auto& p = c.padding;
    if (p[0] > 0 || p[1] > 0) x = at::constant_pad_nd(x, {p[1], p[1], p[0], p[0]}, 0.0).contiguous(x.suggest_memory_format());
    torch::Tensor y;
    if (x.size(2) % 2 == 0 && x.size(3) % 2 == 0) {
      y = at::pixel_shuffle(at::conv2d(space_to_depth(x, channels_last), ws, bs), 2);
    } else {
      y = at::conv2d(x, wdirect, bdirect);
    }
    y = channels_last ? y.contiguous(at::MemoryFormat::ChannelsLast) : y.contiguous();
    return norm_act_(std::move(y), tail);
  };
  return {StepKind::SpaceToDepthConv, text.str(), std::move(fn), {}};
}

Step pad_step(const Layer& layer) {
  const auto pad = layer.pad;
  return {StepKind::Pad, layer.name + ": " + pad_name(pad.mode) + " pad " + std::to_string(pad.amount),
          [pad](torch::Tensor x) { return pad_keep_format(x, pad.amount, pad.mode); }, {}};
}

Step norm_act_step(const Layer& layer, const CompileOptions& o) {
  return {StepKind::NormAct, layer.name + ":" + tail_text(false, layer.norm, layer.act),
          [tail = make_norm_act(layer.norm, layer.act, o.dtype)](torch::Tensor x) { return norm_act_(x.clone(), tail); },
          {}};
}

}  // namespace

Step conv_step(const Layer& layer, const CompileOptions& options) {
  if (auto direct = direct_conv_step(layer, options)) return std::move(*direct);
  switch (layer.conv.rewrite) {
    case ConvRewrite::sub_pixel: return sub_pixel_step(layer, options);
    case ConvRewrite::space_to_depth: return space_to_depth_step(layer, options);
    case ConvRewrite::none: break;
  }
  return libtorch_conv_step(layer, options);
}

Plan compile(const lowering::Graph& graph, const CompileOptions& options) {
  Plan plan;
  for (const auto& layer : graph) {
    switch (layer.kind) {
      case LayerKind::Conv: plan.push_back(conv_step(layer, options)); break;
      case LayerKind::Pad: plan.push_back(pad_step(layer)); break;
      case LayerKind::NormAct: plan.push_back(norm_act_step(layer, options)); break;
      case LayerKind::Norm:
      case LayerKind::Act: throw Error("inference: layer '" + layer.name + "' reached the compiler unfused");
      default: plan.push_back(block_step(layer, options)); break;
    }
  }
  return plan;
}

}  // namespace ganlite::nn::inference_detail
