// Steps on ganlite's direct kernels (nn/direct_conv.h) for fp32 CPU plans: stride-1 convs and CAT
// inception blocks with foldable norms, in NCHW. Each conv's bias, ReLU and residual add run in
// its epilogue, and each pad is written once as a ring around a buffer the conv before it wrote
// into; a block's intermediates (at most 64x64 x trunk width in the students) stay in cache.
#include <torch/torch.h>

#include <memory>
#include <sstream>

#include "ganlite/nn/direct_conv.h"
#include "ganlite/nn/inference_steps.h"

namespace ganlite::nn::inference_detail {

namespace dc = direct_conv;
using lowering::Layer;
using lowering::PadMode;

namespace {

bool direct_allowed(const CompileOptions& o) {
  if (!o.cpu || o.kernels == ConvKernels::onednn) return false;
  if (o.dtype == torch::kBFloat16) return dc::bf16_supported();
  return o.dtype == torch::kFloat && (o.kernels == ConvKernels::direct || dc::best_isa() != dc::Isa::portable);
}

// bf16: a dense conv on bf16 pairs (its inputs converted by pairs_of); depthwise convs stay fp32.
dc::PackedConv pack(const torch::Tensor& weight, const torch::Tensor& bias, bool depthwise, bool bf16 = false) {
  const auto w = weight.to(torch::kFloat).contiguous();
  const auto b = bias.defined() ? bias.to(torch::kFloat).contiguous() : bias;
  const float* b_data = b.defined() ? b.data_ptr<float>() : nullptr;
  const auto out = static_cast<int>(w.size(0)), k = static_cast<int>(w.size(2));
  if (bf16 && !depthwise) return dc::pack_bf16(w.data_ptr<float>(), b_data, out, static_cast<int>(w.size(1)), k);
  return dc::pack(w.data_ptr<float>(), b_data, out, static_cast<int>(depthwise ? w.size(0) : w.size(1)), k, depthwise,
                  dc::best_isa());
}

dc::Ring ring_of(PadMode mode) {
  return mode == PadMode::reflect ? dc::Ring::reflect : mode == PadMode::replicate ? dc::Ring::replicate : dc::Ring::zero;
}

// The planes of an NCHW tensor, starting `p` rows and columns into it (the interior of a padded one).
dc::Planes planes(torch::Tensor& t, int64_t p = 0) {
  return {t.data_ptr<float>() + p * t.stride(2) + p, t.stride(0), t.stride(1), t.stride(2)};
}
dc::ConstPlanes const_planes(const torch::Tensor& t, int64_t p = 0) {
  return {t.data_ptr<float>() + p * t.stride(2) + p, t.stride(0), t.stride(1), t.stride(2)};
}

// An uninitialised NCHW buffer for `channels` planes of h x w padded by p on every side.
torch::Tensor padded_buffer(const torch::Tensor& like, int64_t channels, int64_t p) {
  return at::empty({like.size(0), channels, like.size(2) + 2 * p, like.size(3) + 2 * p}, like.options());
}

void fill_ring(torch::Tensor& padded, int64_t p, int64_t height, int64_t width, PadMode mode) {
  dc::fill_ring(planes(padded), static_cast<int>(padded.size(0)), static_cast<int>(padded.size(1)),
                static_cast<int>(height), static_cast<int>(width), static_cast<int>(p), ring_of(mode));
}

// x copied into a buffer padded by p with its ring filled.
torch::Tensor padded_copy(const torch::Tensor& x, int64_t p, PadMode mode) {
  auto padded = padded_buffer(x, x.size(1), p);
  dc::copy_padded(const_planes(x), planes(padded), static_cast<int>(x.size(0)), static_cast<int>(x.size(1)),
                  static_cast<int>(x.size(2)), static_cast<int>(x.size(3)), static_cast<int>(p), ring_of(mode));
  return padded;
}

// An NCHW fp32 tensor as bf16 channel pairs (the bf16 kernels' input): [N, (C + 1) / 2, H, W] words
// held in a float tensor.
torch::Tensor pairs_of(const torch::Tensor& t) {
  auto pairs = at::empty({t.size(0), (t.size(1) + 1) / 2, t.size(2), t.size(3)}, t.options());
  dc::to_bf16_pairs(const_planes(t), planes(pairs), static_cast<int>(t.size(0)), static_cast<int>(t.size(1)),
                    static_cast<int>(t.size(2)), static_cast<int>(t.size(3)));
  return pairs;
}

// A term reading `in`, a buffer padded by in_pad, at the offset a k x k conv needs.
dc::Term term(const dc::PackedConv& conv, const torch::Tensor& in, int64_t in_pad) {
  return {&conv, const_planes(in, in_pad - conv.k / 2)};
}

struct DirectInception {
  PadMode mode = PadMode::zero;
  bool bf16 = false;  // dense convs on bf16 pairs; input and output in bf16, sums and residual fp32
  std::shared_ptr<dc::PackedConv> expand, depthwise, project;
  struct Res {
    dc::PackedConv in, out;
  };
  std::vector<Res> res;
  int64_t res_pad = 0;  // the widest res pair's k / 2
};

// x + project(depthwise(expand(x))) + sum of out(in(x)) over the res pairs, on NCHW float32, in
// three parallel regions: every conv that reads x; the depthwise conv; every conv that writes the
// block's output (each output value summed by one thread, the residual added in the epilogue).
torch::Tensor run_inception(const DirectInception& d, torch::Tensor x) {
  x = x.to(torch::kFloat).contiguous();
  // What the dense convs read: fp32 planes, or their bf16 pairs.
  const auto dense_input = [&d](const torch::Tensor& t) { return d.bf16 ? pairs_of(t) : t; };
  const int64_t h = x.size(2), w = x.size(3);
  const int batch = static_cast<int>(x.size(0));
  const auto run = [&](const std::vector<dc::Output>& outputs) {
    dc::run(outputs, batch, static_cast<int>(h), static_cast<int>(w));
  };
  const torch::Tensor xpad = d.res.empty() ? x : padded_copy(x, d.res_pad, d.mode);
  const int64_t x_pad = d.res.empty() ? 0 : d.res_pad;
  const torch::Tensor x_in = dense_input(xpad);
  std::vector<dc::Output> reading_x;
  torch::Tensor expanded;
  const int64_t q = d.depthwise ? d.depthwise->k / 2 : 0;
  if (d.expand) {
    expanded = padded_buffer(x, d.expand->out_channels, q);
    reading_x.push_back({planes(expanded, q), {term(*d.expand, x_in, x_pad)}, {}, true});
  }
  std::vector<torch::Tensor> hidden;
  for (const auto& r : d.res) {
    hidden.push_back(padded_buffer(x, r.in.out_channels, r.out.k / 2));
    reading_x.push_back({planes(hidden.back(), r.out.k / 2), {term(r.in, x_in, x_pad)}, {}, true});
  }
  run(reading_x);
  auto out = at::empty_like(x);
  dc::Output sum{planes(out), {}, const_planes(xpad, x_pad), false};
  // The inputs of the output convs outlive `sum`, which points into them.
  std::vector<torch::Tensor> sum_inputs;
  if (d.expand) {
    torch::Tensor mid = expanded;
    if (d.depthwise) {
      fill_ring(expanded, q, h, w, d.mode);
      mid = at::empty({x.size(0), d.expand->out_channels, h, w}, x.options());
      run({{planes(mid), {term(*d.depthwise, expanded, q)}, {}, true}});
    }
    sum_inputs.push_back(dense_input(mid));
    sum.terms.push_back(term(*d.project, sum_inputs.back(), 0));
  }
  for (size_t i = 0; i < d.res.size(); ++i) {
    const int64_t pr = d.res[i].out.k / 2;
    fill_ring(hidden[i], pr, h, w, d.mode);
    sum_inputs.push_back(dense_input(hidden[i]));
    sum.terms.push_back(term(d.res[i].out, sum_inputs.back(), pr));
  }
  if (!sum.terms.empty()) run({sum});
  const torch::Tensor& result = sum.terms.empty() ? x : out;
  return d.bf16 ? result.to(torch::kBFloat16) : result;
}

std::string inception_text(const Layer& layer, const DirectInception& d) {
  std::ostringstream text;
  text << layer.name << ": inception block (direct " << dc::isa_name(d.bf16 ? dc::Isa::avx512_bf16 : dc::best_isa()) << ", "
       << pad_name(d.mode)
       << " pads)";
  if (d.expand) text << "\n    1x1 " << d.expand->in_channels << "->" << d.expand->out_channels << " +bn(folded)+relu";
  if (d.depthwise) {
    text << "\n    depthwise " << d.depthwise->k << "x" << d.depthwise->k << " " << d.depthwise->out_channels
         << " +bn(folded)+relu";
  }
  if (d.project) text << "\n    1x1 " << d.project->in_channels << "->" << d.project->out_channels << " +pw_bn(folded) +x";
  for (const auto& r : d.res) {
    text << "\n    res " << r.in.k << "x" << r.in.k << " " << r.in.in_channels << "->" << r.in.out_channels << "->"
         << r.out.out_channels << " +bn(folded)+relu +x";
  }
  return text.str();
}

}  // namespace

std::optional<Step> direct_inception_step(const Layer& layer, const CompileOptions& o) {
  if (!direct_allowed(o) || !layer.fused) return std::nullopt;
  const auto& f = *layer.fused;
  const int64_t trunk = f.w1.defined() ? f.w1.size(1) : !f.res.empty() ? f.res.front().w_in.size(1) : 0;
  if (o.kernels == ConvKernels::automatic) {
    bool any_thin = false;
    if (f.w1.defined()) any_thin = any_thin || dc::thin(trunk, f.w1.size(0));
    for (const auto& r : f.res) any_thin = any_thin || dc::thin(trunk, r.w_in.size(0));
    if (!any_thin) return std::nullopt;
    // bf16: oneDNN's bf16 kernels run the ngf-64 teacher's 256-wide blocks at 0.91-0.93 of the bf16
    // peak, the direct ones at 0.88; a pruned trunk (62) is where the direct ones win (0.62-0.65
    // against 0.44-0.48 for the 2.6G student).
    if (o.dtype == torch::kBFloat16 && trunk % 16 == 0) return std::nullopt;
  }
  auto d = std::make_shared<DirectInception>();
  d->mode = f.mode;
  d->bf16 = o.dtype == torch::kBFloat16;
  if (f.w1.defined()) {
    d->expand = std::make_shared<dc::PackedConv>(pack(f.w1, f.b1, false, d->bf16));
    if (f.w2.defined()) d->depthwise = std::make_shared<dc::PackedConv>(pack(f.w2, f.b2, true));
    d->project = std::make_shared<dc::PackedConv>(pack(f.w3, f.b3, false, d->bf16));
  }
  for (const auto& r : f.res_separate.empty() ? f.res : f.res_separate) {
    d->res.push_back({pack(r.w_in, r.b_in, false, d->bf16), pack(r.w_out, r.b_out, false, d->bf16)});
    d->res_pad = std::max<int64_t>(d->res_pad, r.k / 2);
  }
  return Step{StepKind::InceptionDirect, inception_text(layer, *d), [d](torch::Tensor x) { return run_inception(*d, x); },
              {}};
}

std::optional<Step> direct_conv_step(const Layer& layer, const CompileOptions& o) {
  const auto& c = layer.conv;
  if (!direct_allowed(o) || o.dtype != torch::kFloat || c.transposed || c.stride != std::vector<int64_t>{1, 1} ||
      c.dilation != std::vector<int64_t>{1, 1} || c.weight.size(2) != c.weight.size(3)) {
    return std::nullopt;
  }
  const int64_t k = c.weight.size(2);
  const bool depthwise = c.groups > 1 && c.groups == c.in_channels() && c.groups == c.out_channels() && c.weight.size(1) == 1;
  if (c.groups > 1 && !depthwise) return std::nullopt;
  // One pad ring: the conv's own zero padding (as much as k / 2) or a pre-pad merged in front.
  const bool own_padding = c.padding[0] == c.padding[1] && c.padding[0] == k / 2 && c.pre_pad.amount == 0;
  const bool pre_padded = c.padding[0] == 0 && c.padding[1] == 0 && c.pre_pad.amount == k / 2;
  if (k % 2 == 0 || !(own_padding || pre_padded || k == 1)) return std::nullopt;
  // Automatic: only convs to fewer channels than one AVX-512 vector (the last conv to RGB); the
  // direct kernels write NCHW, which costs a LibTorch conv that follows more than they save on a
  // 3->16 stem.
  if (o.kernels == ConvKernels::automatic && c.out_channels() >= 16) return std::nullopt;
  const PadMode mode = pre_padded ? c.pre_pad.mode : PadMode::zero;
  const bool relu_in_epilogue = c.norm.kind != lowering::NormSpec::Kind::instance && c.act.kind == lowering::Act::relu;
  auto conv = std::make_shared<dc::PackedConv>(pack(c.weight, c.bias, depthwise));
  auto tail = make_norm_act(c.norm, relu_in_epilogue ? lowering::ActSpec{} : c.act, o.dtype);
  std::ostringstream text;
  text << layer.name << ": conv " << k << "x" << k << " s1 " << c.in_channels() << "->" << c.out_channels();
  if (depthwise) text << " depthwise";
  if (k > 1) text << " +" << pad_name(mode) << k / 2;
  text << tail_text(c.norm_folded, c.norm, c.act) << " (direct " << dc::isa_name(dc::best_isa()) << ")";
  Fn fn = [conv, tail, mode, relu_in_epilogue](torch::Tensor x) {
    x = x.contiguous();
    const int64_t p = conv->k / 2, h = x.size(2), w = x.size(3);
    const torch::Tensor in = p > 0 ? padded_copy(x, p, mode) : x;
    auto y = at::empty({x.size(0), conv->out_channels, h, w}, x.options());
    dc::run({{planes(y), {term(*conv, in, p)}, {}, relu_in_epilogue}}, static_cast<int>(x.size(0)),
            static_cast<int>(h), static_cast<int>(w));
    return norm_act_(std::move(y), tail);
  };
  return Step{StepKind::DirectConv, text.str(), std::move(fn), {}};
}

}  // namespace ganlite::nn::inference_detail
