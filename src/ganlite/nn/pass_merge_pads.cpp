// A pad layer in front of a conv becomes part of the conv: a zero pad adds to the conv's own
// padding, a reflection / replication pad is run by the conv's step (written straight into a
// channels-last buffer by the runner, a Pad node before the Conv in ONNX). Pads of 0 vanish.
#include "ganlite/nn/lowering.h"

namespace ganlite::nn::lowering {

namespace {

bool merges_into(const Layer& pad, const Layer* next) {
  return pad.kind == LayerKind::Pad && next != nullptr && next->kind == LayerKind::Conv && !next->conv.transposed &&
         next->conv.pre_pad.amount == 0;
}

void merge_pads(Graph& graph) {
  Graph out;
  for (size_t i = 0; i < graph.size(); ++i) {
    Layer& layer = graph[i];
    Layer* next = i + 1 < graph.size() ? &graph[i + 1] : nullptr;
    if (merges_into(layer, next)) {
      if (layer.pad.mode == PadMode::zero) {
        for (auto& p : next->conv.padding) p += layer.pad.amount;
      } else {
        next->conv.pre_pad = layer.pad;
      }
      continue;
    }
    if (layer.kind == LayerKind::Pad && layer.pad.amount == 0) continue;
    out.push_back(std::move(layer));
  }
  graph = std::move(out);
}

}  // namespace

Pass merge_pads_pass() { return {"merge_pads", /*for_export=*/true, merge_pads}; }

}  // namespace ganlite::nn::lowering
