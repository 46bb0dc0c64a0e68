// CAT's one-step pruning (methods.md 3.1): one global threshold on the |gamma| of the scored
// normalisation layers, found by binary search so the student fits a MAC budget.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <utility>

#include "ganlite/nn/generator.h"
#include "ganlite/nn/profiler.h"

namespace ganlite::compress {

// Kept channel counts rounded to multiples of the kernels' lane width (issue 19): up (capped at
// the layer's width), or to the nearer multiple (down only where the floor allows; an inception
// branch may then vanish). multiple 0: exact counts, CAT's rule.
struct ChannelRounding {
  int multiple = 0;
  bool nearest = false;
};

struct PruneOptions {
  double target_macs = 0;        // the budget, counted at input_size x input_size, batch 1
  int64_t input_size = 256;
  int min_channels = 16;         // kept in the stem, down and up layers (and the trunk)
  bool inherit_weights = true;   // copy the teacher's surviving channels; false: fresh init
  ChannelRounding rounding;      // the added (or dropped) channels are the next by |gamma|
};

struct PruneResult {
  nn::Generator student;
  nn::ArchConfig config;         // the student's architecture (widths written out)
  double threshold = 0;          // channels with |gamma| > threshold survive
  int64_t macs_before = 0, macs_after = 0;  // methods.md section 5 (BatchNorm counted)
  int64_t search_macs = 0;  // the student's MACs as the search counts them (MacRules::cat_search)
  int64_t params_before = 0, params_after = 0;
  int search_steps = 0;
  bool inherited = false;  // the teacher's weights were sliced in (families without a slicing plan: fresh)
  double seconds = 0;
};

// The student's widths when every scored channel with |gamma| <= threshold is dropped. The
// trunk (every block's residual width) follows the last down norm; an inception branch may
// vanish (width 0) and a block with none left is the identity; ResNet blocks keep >= 1 channel.
nn::GeneratorWidths widths_at_threshold(const nn::GeneratorImpl& teacher, double threshold, int min_channels,
                                        const ChannelRounding& round = {});

// The smallest and largest |gamma| over the teacher's scored norms: the thresholds a search
// bisects between. Throws UsageError as prune_to_mac_budget does for a teacher without norm scales.
std::pair<double, double> gamma_range(const nn::GeneratorImpl& teacher);

// Prunes at a given threshold (no search).
PruneResult prune_at_threshold(const nn::GeneratorImpl& teacher, double threshold, const PruneOptions& options);

// One CAT threshold search (snap-research/CAT utils/common.py, shrink_model): bisect [lo, hi] in
// float32 as CAT's tensors do, moving lo to the midpoint when its MACs exceed the target and hi
// otherwise, and stop only when |hi - lo| <= 1e-3 * lo AND the last midpoint met the target; the
// threshold is that last midpoint. Requires macs_at(hi) <= target (else CAT would loop forever);
// stops after `max_steps` at hi, which always meets the target.
struct ThresholdSearch {
  double threshold = 0;
  int64_t macs = 0;  // macs_at(threshold)
  int steps = 0;
};
ThresholdSearch search_threshold(float lo, float hi, double target_macs, const std::function<int64_t(double)>& macs_at,
                                 int max_steps = 400);

// search_threshold between min and max |gamma|, counting MACs as CAT's search does (BatchNorm
// with running stats left out, MacRules::cat_search): so search_macs <= target, while the
// reported macs_after (BatchNorm counted) may exceed it for BatchNorm teachers. A teacher whose
// search MACs already meet the budget is kept whole (threshold 0). Throws UsageError when the teacher has no
// norm scales (non-affine norms), or when the budget is below the smallest network the rule
// can build (the message gives that minimum).
PruneResult prune_to_mac_budget(const nn::GeneratorImpl& teacher, const PruneOptions& options);

// MACs of a generator architecture at size x size (profiled at a reduced size and scaled
// exactly, since every layer's output area scales with the input's).
int64_t count_generator_macs(const nn::ArchConfig& config, int64_t input_size, const nn::MacRules& rules = {});

}  // namespace ganlite::compress
