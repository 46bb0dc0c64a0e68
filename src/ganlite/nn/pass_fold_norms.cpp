// An eval-mode norm (running statistics) right after a conv is folded into the conv's weights and
// bias (nn/fold_norm.h): exact in real arithmetic, computed in float64. One norm per conv; a
// second one stays a layer of its own.
#include "ganlite/nn/lowering.h"

namespace ganlite::nn::lowering {

namespace {

bool folds_into(const Layer& previous, const Layer& norm) {
  return norm.kind == LayerKind::Norm && norm.norm.kind == NormSpec::Kind::running &&
         previous.kind == LayerKind::Conv && !previous.conv.norm_folded &&
         previous.conv.norm.kind == NormSpec::Kind::none && previous.conv.act.kind == Act::none;
}

void fold_norms(Graph& graph) {
  Graph out;
  for (auto& layer : graph) {
    if (!out.empty() && folds_into(out.back(), layer)) {
      ConvSpec& c = out.back().conv;
      // Out channels: dim 0 of a conv weight, dim 1 of a transposed conv's (ungrouped when lowered).
      ConvWeights folded = fold_affine_into_conv(c.weight, c.bias, layer.norm.affine, c.transposed ? 1 : 0);
      c.weight = std::move(folded.weight);
      c.bias = std::move(folded.bias);
      c.norm_folded = true;
      continue;
    }
    out.push_back(std::move(layer));
  }
  graph = std::move(out);
}

}  // namespace

Pass fold_norms_pass() { return {"fold_norms", /*for_export=*/true, fold_norms}; }

}  // namespace ganlite::nn::lowering
