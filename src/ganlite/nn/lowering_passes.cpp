// The rewrites of a lowered generator, in the order they run. Each unit (nn/pass_<name>.cpp)
// defines `Pass <name>_pass()`. The library is a static archive: an object file that registered
// itself from a static initialiser but that nothing references would be dropped by the linker, so
// the list is explicit and ordered. A new rewrite adds one X(name) here, where it must run.
//   fold_norms         eval-mode norms into the conv before them            (runner, ONNX)
//   merge_inception    CAT blocks with foldable norms as 7 (or 5) convs     (runner)
//   merge_pads         pad layers into the conv after them                  (runner, ONNX)
//   fuse_norm_act      a conv's norm and activation into its step           (runner)
//   sub_pixel          3x3 stride-2 transposed convs as conv + pixel shuffle (runner)
//   space_to_depth     k x k convs to <= 4 channels on the input folded 2x2  (runner)
#define GANLITE_LOWERING_PASSES(X) \
  X(fold_norms) X(merge_inception) X(merge_pads) X(fuse_norm_act) X(sub_pixel) X(space_to_depth)

#include "ganlite/nn/lowering.h"
#include "ganlite/util/registry.h"

namespace ganlite::nn::lowering {

#define GANLITE_DECLARE_LOWERING_PASS(name) Pass name##_pass();
GANLITE_LOWERING_PASSES(GANLITE_DECLARE_LOWERING_PASS)
#undef GANLITE_DECLARE_LOWERING_PASS

namespace {

std::vector<Pass> build_passes() {
#define GANLITE_LIST_LOWERING_PASS(name) name##_pass(),
  std::vector<Pass> list{GANLITE_LOWERING_PASSES(GANLITE_LIST_LOWERING_PASS)};
#undef GANLITE_LIST_LOWERING_PASS
  check_unique_names(list, "lowering pass");
  for (const auto& p : list) {
    if (!p.run) throw Error("lowering pass '" + p.name + "' has no function");
  }
  return list;
}

}  // namespace

const std::vector<Pass>& passes() {
  static const std::vector<Pass> list = build_passes();
  return list;
}

void apply_passes(Graph& graph, Consumer consumer) {
  for (const auto& pass : passes()) {
    if (consumer == Consumer::runner || pass.for_export) for_each_graph(graph, pass.run);
  }
}

}  // namespace ganlite::nn::lowering
