// CAT inception blocks (x + pw_bn(sum of branches)) whose norms are folded or absent: their up to
// 15 small convs become 7, or 5 with thin res branches (the student's branches are 8-16 channels
// wide, so per-call costs, not MACs, dominate there): every 1x1 that reads the block input is one
// conv; the depthwise convs are one 5x5 depthwise conv (3x3 / 1x1 kernels embedded at the centre:
// reflect, replicate and zero pads agree at distance 1, so this is exact) that passes the res_k1
// channels through; every 1x1 that writes the block output is one conv over the concatenated
// channels; thin k x k res branches are one conv pair; pw_bn is folded into all the output convs.
// Blocks with an InstanceNorm (statistics per image) stay Branches layers.
#include <torch/torch.h>

#include <algorithm>
#include <optional>

#include "ganlite/nn/lowering.h"

namespace ganlite::nn::lowering {

namespace {

struct FoldedConv {
  torch::Tensor w, b;  // float64; b always defined
};

FoldedConv folded(const ConvSpec& c) {
  auto w = c.weight.to(torch::kDouble);
  auto b = c.bias.defined() ? c.bias.to(torch::kDouble) : torch::zeros({w.size(0)}, w.options());
  return {w, b};
}

// The k x k window at the centre of a [.., .., K, K] kernel (K >= k, same parity): where a smaller
// kernel sits when it is merged into a larger one.
torch::Tensor centre(const torch::Tensor& kernel, int64_t k) {
  const int64_t off = (kernel.size(2) - k) / 2;
  return kernel.narrow(2, off, k).narrow(3, off, k);
}

// Reads a branch's layers in order; each take returns nullptr when the next layer does not fit.
class Cursor {
 public:
  Cursor(const Graph& graph, PadMode* mode) : graph_(graph), mode_(mode) {}
  // An optional pad of k / 2; false only for a pad of another width.
  bool skip_pad(int64_t k) {
    if (i_ >= graph_.size() || graph_[i_].kind != LayerKind::Pad) return true;
    const PadSpec& p = graph_[i_++].pad;
    if (p.amount > 0) *mode_ = p.mode;
    return p.amount == k / 2;
  }
  bool relu() {
    const bool ok = i_ < graph_.size() && graph_[i_].kind == LayerKind::Act && graph_[i_].act.kind == Act::relu;
    i_ += ok ? 1 : 0;
    return ok;
  }
  // A stride-1, unpadded, square conv with nothing fused yet, in `groups` groups (0: depthwise).
  const ConvSpec* conv(int64_t groups) {
    if (i_ >= graph_.size() || graph_[i_].kind != LayerKind::Conv) return nullptr;
    const ConvSpec& c = graph_[i_++].conv;
    const std::vector<int64_t> zero{0, 0}, one{1, 1};
    const bool plain = !c.transposed && c.stride == one && c.dilation == one && c.padding == zero &&
                       c.pre_pad.amount == 0 && c.norm.kind == NormSpec::Kind::none && c.act.kind == Act::none &&
                       c.weight.size(2) == c.weight.size(3) && c.weight.size(2) % 2 == 1;
    const bool grouped = groups == 0 ? c.groups == c.weight.size(0) && c.weight.size(1) == 1 : c.groups == groups;
    return plain && grouped ? &c : nullptr;
  }
  // The next conv's kernel size, 0 when the next layer is none.
  int64_t peek_kernel() const {
    for (size_t j = i_; j < graph_.size(); ++j) {
      if (graph_[j].kind == LayerKind::Conv) return graph_[j].conv.weight.size(2);
    }
    return 0;
  }
  bool done() const { return i_ == graph_.size(); }

 private:
  const Graph& graph_;
  PadMode* mode_;
  size_t i_ = 0;
};

struct Res {
  int64_t k;
  FoldedConv in, out;
};

// [pad, conv k x k, relu, pad, conv k x k]
std::optional<Res> match_res(const Graph& branch, PadMode* mode) {
  Cursor at(branch, mode);
  const int64_t k = at.peek_kernel();
  if (!at.skip_pad(k)) return std::nullopt;
  const ConvSpec* in = at.conv(1);
  if (!in || !at.relu() || !at.skip_pad(k)) return std::nullopt;
  const ConvSpec* out = at.conv(1);
  if (!out || !at.done() || out->weight.size(2) != k) return std::nullopt;
  return Res{k, folded(*in), folded(*out)};
}

struct Dw {
  FoldedConv in, dw, out;
};

// [conv 1x1, relu, pad, depthwise conv k x k, relu, conv 1x1]
std::optional<Dw> match_dw(const Graph& branch, PadMode* mode) {
  Cursor at(branch, mode);
  const ConvSpec* in = at.conv(1);
  if (!in || in->weight.size(2) != 1 || !at.relu() || !at.skip_pad(at.peek_kernel())) return std::nullopt;
  const ConvSpec* dw = at.conv(0);
  if (!dw || !at.relu()) return std::nullopt;
  const ConvSpec* out = at.conv(1);
  if (!out || out->weight.size(2) != 1 || !at.done()) return std::nullopt;
  return Dw{folded(*in), folded(*dw), folded(*out)};
}

// Thin k x k res branches (3x3 and 5x5 in CAT) run as one conv pair at the largest k with each
// branch's kernels centred: pad rings at distance d agree whatever the pad width, so this is
// exact. It pays only for branches narrower than one 16-lane vector, whose empty lanes and
// per-call costs outweigh the 3x3 branch's extra MACs at 5x5 (the pruned student: 1.7x
// faster blocks); the ngf-64 teacher's 42-wide branches ran 1.4x slower merged.
void merge_thin_res(std::vector<Res>& res) {
  const bool thin = std::all_of(res.begin(), res.end(), [](const Res& r) { return r.in.w.size(0) < 16; });
  if (res.size() <= 1 || !thin) return;
  int64_t k = 0, mid = 0;
  for (const auto& r : res) k = std::max(k, r.k), mid += r.in.w.size(0);
  const auto opts = res.front().in.w.options();
  const int64_t dim_in = res.front().in.w.size(1), dim_out = res.front().out.w.size(0);
  FoldedConv in{torch::zeros({mid, dim_in, k, k}, opts), torch::zeros({mid}, opts)};
  FoldedConv out{torch::zeros({dim_out, mid, k, k}, opts), torch::zeros({dim_out}, opts)};
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

// The block's branches, matched; nullopt when any branch has another shape.
struct Matched {
  PadMode mode = PadMode::zero;
  std::vector<Res> res;            // k x k res branches
  std::optional<Res> res1;         // the 1x1 res branch
  std::vector<Dw> dw;
};

std::optional<Matched> match_block(const Layer& block) {
  Matched m;
  for (size_t j = 0; j < block.bodies.size(); ++j) {
    if (j < block.res_branches) {
      auto r = match_res(block.bodies[j], &m.mode);
      if (!r || (r->k == 1 && m.res1)) return std::nullopt;
      if (r->k == 1) {
        m.res1 = std::move(*r);
      } else {
        m.res.push_back(std::move(*r));
      }
    } else {
      auto d = match_dw(block.bodies[j], &m.mode);
      if (!d) return std::nullopt;
      m.dw.push_back(std::move(*d));
    }
  }
  return m;
}

// The block's norm applied after the output convs: out = (sum_i conv_i(h_i)) * scale + shift;
// each conv keeps its own scaled bias and the first one also carries the shift.
class BlockNormFolder {
 public:
  explicit BlockNormFolder(const NormSpec& norm) {
    if (norm.kind == NormSpec::Kind::running) scale_ = norm.affine.scale, shift_ = norm.affine.shift;
  }
  FoldedConv operator()(FoldedConv c) {
    if (!scale_.defined()) return c;
    c.w = c.w * scale_.view({-1, 1, 1, 1});
    c.b = c.b * scale_;
    if (!shift_added_) c.b = c.b + shift_;
    shift_added_ = true;
    return c;
  }

 private:
  torch::Tensor scale_, shift_;
  bool shift_added_ = false;
};

// The 1x1s on the input (dw mids, then res_k1's mid), the depthwise convs with res_k1's channels
// passed through, and the 1x1s to the output (dw outs, then res_k1's out).
void merge_pointwise(const Matched& m, BlockNormFolder& fold_norm, FusedInception& f) {
  std::vector<torch::Tensor> ws1, bs1, ws3;
  torch::Tensor bias3;
  auto add_output = [&](const FoldedConv& c) {
    ws3.push_back(c.w);
    bias3 = bias3.defined() ? bias3 + c.b : c.b;
  };
  for (const auto& d : m.dw) ws1.push_back(d.in.w), bs1.push_back(d.in.b);
  if (m.res1) ws1.push_back(m.res1->in.w), bs1.push_back(m.res1->in.b);
  if (ws1.empty()) return;
  f.w1 = at::cat(ws1, 0), f.b1 = at::cat(bs1, 0);
  const int64_t channels = f.w1.size(0);
  if (!m.dw.empty()) {
    for (const auto& d : m.dw) f.k2 = std::max(f.k2, d.dw.w.size(2));
    f.w2 = torch::zeros({channels, 1, f.k2, f.k2}, f.w1.options());
    f.b2 = torch::zeros({channels}, f.w1.options());
    int64_t at_ch = 0;
    for (const auto& d : m.dw) {
      const int64_t n = d.dw.w.size(0);
      centre(f.w2.narrow(0, at_ch, n), d.dw.w.size(2)).copy_(d.dw.w);
      f.b2.narrow(0, at_ch, n).copy_(d.dw.b);
      at_ch += n;
    }
    // res_k1's channels pass through (they are already >= 0, so the ReLU keeps them).
    for (int64_t ch = at_ch; ch < channels; ++ch) f.w2[ch][0][f.k2 / 2][f.k2 / 2] = 1.0;
  }
  for (const auto& d : m.dw) add_output(d.out);
  if (m.res1) add_output(m.res1->out);
  FoldedConv out = fold_norm({at::cat(ws3, 1), bias3});
  f.w3 = out.w, f.b3 = out.b;
}

std::shared_ptr<const FusedInception> fuse_block(const Layer& block) {
  if (block.norm.kind == NormSpec::Kind::instance) return nullptr;
  auto m = match_block(block);
  if (!m) return nullptr;
  const std::vector<Res> separate = m->res;
  merge_thin_res(m->res);
  auto f = std::make_shared<FusedInception>();
  f->mode = m->mode;
  BlockNormFolder fold_norm(block.norm);
  merge_pointwise(*m, fold_norm, *f);
  BlockNormFolder fold_separate = fold_norm;  // the same shift bookkeeping for the unmerged pairs
  for (auto& r : m->res) {
    const FoldedConv out = fold_norm(r.out);
    f->res.push_back({r.k, r.in.w, r.in.b, out.w, out.b});
  }
  if (separate.size() != m->res.size()) {
    for (const auto& r : separate) {
      const FoldedConv out = fold_separate(r.out);
      f->res_separate.push_back({r.k, r.in.w, r.in.b, out.w, out.b});
    }
  }
  return f;
}

void merge_inception(Graph& graph) {
  for (auto& layer : graph) {
    if (layer.kind != LayerKind::Branches) continue;
    if (auto fused = fuse_block(layer)) {
      layer.kind = LayerKind::InceptionFused;
      layer.fused = std::move(fused);
      layer.bodies.clear();
    }
  }
}

}  // namespace

Pass merge_inception_pass() { return {"merge_inception", /*for_export=*/false, merge_inception}; }

}  // namespace ganlite::nn::lowering
