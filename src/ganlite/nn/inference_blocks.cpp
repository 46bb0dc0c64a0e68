// Blocks of a lowered graph compiled to runtime steps: residual blocks, CAT inception blocks
// (merged by pass_merge_inception, or branch by branch), U-Net skip blocks, and eager layers.
#include <torch/torch.h>

#include <memory>
#include <sstream>

#include "ganlite/nn/inference_steps.h"
#include "ganlite/util/error.h"

namespace ganlite::nn::inference_detail {

using lowering::Layer;
using lowering::LayerKind;

namespace {

std::string indent(const Plan& plan) {
  std::string s;
  for (const auto& step : plan) s += "\n    " + step.text;
  return s;
}

Step residual_step(const Layer& layer, const CompileOptions& o) {
  auto body = std::make_shared<Plan>(compile(layer.bodies.at(0), o));
  return {StepKind::Residual, layer.name + ": residual" + indent(*body),
          [body](torch::Tensor x) {
            auto y = run_plan(*body, x);
            return y.is_same(x) ? y + x : y.add_(x);
          },
          kinds_of(*body)};
}

// x + norm(sum of the branches), branch by branch (a block with InstanceNorm).
Step branches_step(const Layer& layer, const CompileOptions& o) {
  auto branches = std::make_shared<std::vector<Plan>>();
  std::string text = layer.name + ": inception block";
  std::vector<StepKind> inner;
  for (const auto& body : layer.bodies) {
    branches->push_back(compile(body, o));
    text += indent(branches->back());
    const auto kinds = kinds_of(branches->back());
    inner.insert(inner.end(), kinds.begin(), kinds.end());
  }
  text += "\n    " + layer.norm_name + ":" + tail_text(false, layer.norm, {});
  return {StepKind::InceptionBranches, text,
          [branches, tail = make_norm_act(layer.norm, {}, o.dtype)](torch::Tensor x) {
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
            return norm_act_(std::move(sum), tail).add_(x);
          },
          std::move(inner)};
}

// pass_merge_inception's convs on prepared weights.
struct FusedWeights {
  torch::Tensor w1, b1, w2, b2, w3, b3;
  int64_t k2 = 1, groups2 = 0;
  struct Res {
    int64_t k;
    torch::Tensor w_in, b_in, w_out, b_out;
  };
  std::vector<Res> res;
  lowering::PadMode mode;
};

FusedWeights prepare_fused(const lowering::FusedInception& f, const CompileOptions& o) {
  auto weight = [&o](const torch::Tensor& w) { return w.defined() ? prepare_weight(w, o.dtype, o.channels_last) : w; };
  auto bias = [&o](const torch::Tensor& b) { return b.defined() ? b.to(o.dtype).contiguous() : b; };
  FusedWeights p{weight(f.w1), bias(f.b1), weight(f.w2), bias(f.b2), weight(f.w3), bias(f.b3), f.k2, 0, {}, f.mode};
  if (p.w2.defined()) p.groups2 = p.w2.size(0);
  for (const auto& r : f.res) p.res.push_back({r.k, weight(r.w_in), bias(r.b_in), weight(r.w_out), bias(r.b_out)});
  return p;
}

std::string fused_text(const std::string& name, const FusedWeights& p) {
  std::ostringstream text;
  text << name << ": inception block (fused, " << pad_name(p.mode) << " pads)";
  if (p.w1.defined()) text << "\n    1x1 " << p.w1.size(1) << "->" << p.w1.size(0) << " +bn(folded)+relu";
  if (p.w2.defined()) text << "\n    depthwise " << p.k2 << "x" << p.k2 << " " << p.w2.size(0) << " +bn(folded)+relu";
  if (p.w3.defined()) text << "\n    1x1 " << p.w3.size(1) << "->" << p.w3.size(0) << " +pw_bn(folded)";
  for (const auto& r : p.res) {
    text << "\n    res " << r.k << "x" << r.k << " " << r.w_in.size(1) << "->" << r.w_in.size(0) << "->"
         << r.w_out.size(0) << " +bn(folded)+relu";
  }
  return text.str();
}

torch::Tensor run_fused(const FusedWeights& p, const torch::Tensor& x) {
  torch::Tensor sum;
  if (p.w1.defined()) {
    auto h = at::conv2d(x, p.w1, p.b1).relu_();
    if (p.w2.defined()) {
      if (p.k2 > 1) h = pad_keep_format(h, p.k2 / 2, p.mode);
      h = at::conv2d(h, p.w2, p.b2, std::vector<int64_t>{1, 1}, std::vector<int64_t>{0, 0}, std::vector<int64_t>{1, 1},
                     p.groups2)
              .relu_();
    }
    sum = at::conv2d(h, p.w3, p.b3);
  }
  for (const auto& r : p.res) {
    auto h = at::conv2d(pad_keep_format(x, r.k / 2, p.mode), r.w_in, r.b_in).relu_();
    auto y = at::conv2d(pad_keep_format(h, r.k / 2, p.mode), r.w_out, r.b_out);
    sum = sum.defined() ? sum.add_(y) : y;
  }
  if (!sum.defined()) return x;
  return sum.add_(x);
}

Step fused_inception_step(const Layer& layer, const CompileOptions& o) {
  auto p = std::make_shared<const FusedWeights>(prepare_fused(*layer.fused, o));
  return {StepKind::InceptionFused, fused_text(layer.name, *p), [p](torch::Tensor x) { return run_fused(*p, x); }, {}};
}

// cat(act(x), body(act(x))): the public code's in-place LeakyReLU makes the skip carry the
// activated input.
Step skip_concat_step(const Layer& layer, const CompileOptions& o) {
  auto rest = std::make_shared<Plan>(compile(layer.bodies.at(0), o));
  return {StepKind::UnetSkip, layer.name + ": skip block (lrelu, cat)" + indent(*rest),
          [rest, slope = layer.act.slope](torch::Tensor x) {
            auto l = at::leaky_relu(x, slope);
            return at::cat({l, run_plan(*rest, l)}, 1);
          },
          kinds_of(*rest)};
}

Step inline_step(const Layer& layer, const CompileOptions& o) {
  auto body = std::make_shared<Plan>(compile(layer.bodies.at(0), o));
  return {StepKind::UnetOuter, layer.name + ": outer block" + indent(*body),
          [body](torch::Tensor x) { return run_plan(*body, x); }, kinds_of(*body)};
}

}  // namespace

Step block_step(const Layer& layer, const CompileOptions& options) {
  switch (layer.kind) {
    case LayerKind::Residual: return residual_step(layer, options);
    case LayerKind::Branches: return branches_step(layer, options);
    case LayerKind::InceptionFused: {
      if (auto direct = direct_inception_step(layer, options)) return std::move(*direct);
      return fused_inception_step(layer, options);
    }
    case LayerKind::SkipConcat: return skip_concat_step(layer, options);
    case LayerKind::Inline: return inline_step(layer, options);
    case LayerKind::Eager: return eager_step(layer.eager, layer.name + ": eager " + layer.eager.what, options);
    default: break;
  }
  throw Error("inference: layer '" + layer.name + "' has no step");
}

}  // namespace ganlite::nn::inference_detail
