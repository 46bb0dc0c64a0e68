// The norm and activation after a conv run in the conv's step (InstanceNorm + ReLU as one
// scale-shift pass over NHWC data); a conv followed by an InstanceNorm drops its bias, which the
// norm's mean subtraction removes anyway. A norm and / or activation after anything else becomes
// one NormAct layer.
#include "ganlite/nn/lowering.h"

namespace ganlite::nn::lowering {

namespace {

bool is(const Graph& graph, size_t i, LayerKind kind) { return i < graph.size() && graph[i].kind == kind; }

// Moves the norm (unless one is folded in already) and then the activation at `i` into `conv`.
size_t fuse_into_conv(Graph& graph, size_t i, ConvSpec& conv) {
  if (!conv.norm_folded && is(graph, i, LayerKind::Norm)) {
    conv.norm = std::move(graph[i++].norm);
    if (conv.norm.kind == NormSpec::Kind::instance) conv.bias = torch::Tensor();
  }
  if (is(graph, i, LayerKind::Act)) conv.act = graph[i++].act;
  return i;
}

// A norm and / or the activation after it, starting at `i`, as one NormAct layer.
size_t fuse_alone(Graph& graph, size_t i, Graph& out) {
  Layer fused;
  fused.kind = LayerKind::NormAct;
  fused.name = graph[i].name;
  if (is(graph, i, LayerKind::Norm)) fused.norm = std::move(graph[i++].norm);
  if (is(graph, i, LayerKind::Act)) fused.act = graph[i++].act;
  out.push_back(std::move(fused));
  return i;
}

void fuse_norm_act(Graph& graph) {
  Graph out;
  size_t i = 0;
  while (i < graph.size()) {
    if (graph[i].kind == LayerKind::Norm || graph[i].kind == LayerKind::Act) {
      i = fuse_alone(graph, i, out);
      continue;
    }
    out.push_back(std::move(graph[i++]));
    if (out.back().kind == LayerKind::Conv) i = fuse_into_conv(graph, i, out.back().conv);
  }
  graph = std::move(out);
}

}  // namespace

Pass fuse_norm_act_pass() { return {"fuse_norm_act", /*for_export=*/false, fuse_norm_act}; }

}  // namespace ganlite::nn::lowering
