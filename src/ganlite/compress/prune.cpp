#include "ganlite/compress/prune.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <deque>
#include <limits>
#include <map>
#include <set>
#include <tuple>

#include "ganlite/nn/generator_family.h"
#include "ganlite/nn/layers.h"
#include "ganlite/nn/profiler.h"
#include "ganlite/util/error.h"

namespace ganlite::compress {

namespace {

using nn::NormRole;

// Indices (int64, ascending) of the channels a layer keeps; undefined = keep all.
using Channels = torch::Tensor;

struct Masks {
  std::map<std::tuple<NormRole, int, int>, Channels> by_norm;  // (role, block, slot)
  Channels get(NormRole role, int block = -1, int slot = -1) const {
    auto it = by_norm.find({role, block, slot});
    return it == by_norm.end() ? Channels() : it->second;
  }
};

int64_t count(const Channels& c) { return c.numel(); }

// How many channels a layer keeps: `above` (|gamma| > threshold), at least `floor`, then rounded
// to a multiple of `multiple` (> 0) for the kernels' lane width (issue 19): up, capped at the
// layer's `width`; or to the nearer multiple, down only where that keeps the floor.
int64_t kept_count(int64_t above, int64_t floor, int64_t width, int64_t multiple, bool nearest) {
  floor = std::min(floor, width);
  const int64_t wanted = std::max(above, floor);
  if (multiple <= 0 || wanted == 0) return wanted;
  const int64_t down = wanted / multiple * multiple, up = down == wanted ? wanted : down + multiple;
  if (nearest && down >= floor && wanted - down < up - wanted) return down;
  return std::min(width, up);
}

// The `count` channels of largest |gamma|, in index order: those with |gamma| > threshold, and
// the next strongest when the floor or the rounding asks for more (or fewer).
Channels channels_above(const torch::Tensor& gamma, double threshold, int64_t floor, const ChannelRounding& round) {
  const auto score = gamma.detach().abs().to(torch::kCPU, torch::kFloat64);
  auto keep = torch::nonzero(score > threshold).flatten();
  const int64_t count = kept_count(keep.numel(), floor, score.numel(), round.multiple, round.nearest);
  if (count == 0) return torch::empty({0}, torch::kLong);
  if (keep.numel() != count) keep = std::get<0>(std::get<1>(torch::topk(score, count)).sort());
  return keep.to(torch::kLong);
}

std::vector<nn::ScoredNorm> scored_norms_or_explain(const nn::GeneratorImpl& teacher) {
  const auto& cfg = teacher.config();
  if (!nn::norm_is_affine(cfg.norm)) {
    throw UsageError("the teacher's norm is '" + cfg.norm +
                     "', which has no scale gamma to rank channels by; CAT pruning needs affine norms: "
                     "train the teacher with --norm instance_affine or batch");
  }
  return teacher.scored_norms();  // throws UsageError for families without them
}

// The family's pruning hooks; UsageError naming the prunable families when it has none.
const nn::PruneHooks& prune_hooks(const nn::GeneratorImpl& teacher) {
  const auto& family = nn::generator_family(teacher.config().arch);
  if (!family.prune.plan && !family.prune.student_config) {
    throw UsageError("CAT pruning is not defined for the " + family.name +
                     " architecture (valid: " + join_names(nn::prunable_generator_families(), ", ") + ")");
  }
  return family.prune;
}

Masks masks_at_threshold(const std::vector<nn::ScoredNorm>& norms, double threshold, int min_channels,
                         const ChannelRounding& round, const nn::PruneHooks& hooks) {
  Masks masks;
  for (const auto& norm : norms) {
    // A block's norm keeps the family's floor (ResNet blocks cannot vanish, inception branches can).
    const int64_t floor = norm.role != NormRole::block ? min_channels : hooks.block_floor;
    masks.by_norm[{norm.role, norm.block, norm.slot}] = channels_above(norm.weight(), threshold, floor, round);
  }
  return masks;
}

nn::GeneratorWidths widths_from_masks(const Masks& masks, const nn::ArchConfig& teacher_config) {
  const auto teacher = teacher_config.with_resolved_widths();
  nn::GeneratorWidths w;
  w.stem = static_cast<int>(count(masks.get(NormRole::stem)));
  w.down1 = static_cast<int>(count(masks.get(NormRole::down1)));
  w.trunk = static_cast<int>(count(masks.get(NormRole::trunk)));
  w.up1 = static_cast<int>(count(masks.get(NormRole::up1)));
  w.up2 = static_cast<int>(count(masks.get(NormRole::up2)));
  for (size_t b = 0; b < teacher.widths.blocks.size(); ++b) {
    std::vector<int> block;
    for (size_t slot = 0; slot < teacher.widths.blocks[b].size(); ++slot) {
      const auto c = masks.get(NormRole::block, static_cast<int>(b), static_cast<int>(slot));
      block.push_back(c.defined() ? static_cast<int>(count(c)) : 0);  // absent in the teacher too
    }
    w.blocks.push_back(block);
  }
  return w;
}

// The student's config: the family's rule when it has one, else the teacher's with the kept widths.
nn::ArchConfig student_from_masks(const Masks& masks, const nn::ArchConfig& teacher_config,
                                  const nn::PruneHooks& hooks) {
  if (!hooks.student_config) {
    nn::ArchConfig c = teacher_config;
    c.widths = widths_from_masks(masks, teacher_config);
    return c;
  }
  return hooks.student_config(teacher_config, [&masks](NormRole role, int block, int slot) {
    const auto c = masks.get(role, block, slot);
    return c.defined() ? static_cast<int>(count(c)) : 0;
  });
}

// MACs of a config for the budget: the family's count at its training resolution, else profiled.
int64_t budget_macs(const nn::ArchConfig& config, int64_t input_size, const nn::MacRules& rules,
                    const nn::PruneHooks& hooks) {
  if (hooks.macs) return hooks.macs(config, rules.count_batchnorm_with_running_stats);
  return count_generator_macs(config, input_size, rules);
}

// One layer's parameters and buffers, sliced from the teacher into the student.
struct LayerSlice {
  std::string teacher_prefix, student_prefix;
  Channels out, in;  // undefined = all
  bool transposed = false;
  bool depthwise = false;
};

// Walks a module in execution order. `current` is the channel selection of the activation
// entering the next layer; every non-depthwise conv moves to the next selection in `targets`.
void walk(const torch::nn::Module& module, const std::string& tprefix, const std::string& sprefix,
          Channels& current, std::deque<Channels>& targets, std::vector<LayerSlice>& slices) {
  auto take_target = [&]() {
    if (targets.empty()) throw Error("pruning: more convolutions than planned at " + tprefix);
    auto t = targets.front();
    targets.pop_front();
    return t;
  };
  if (const auto* conv = dynamic_cast<const torch::nn::Conv2dImpl*>(&module)) {
    const auto groups = conv->options.groups();
    if (groups > 1 && groups == conv->options.in_channels()) {
      slices.push_back({tprefix, sprefix, current, current, false, true});
    } else {
      auto out = take_target();
      slices.push_back({tprefix, sprefix, out, current, false, false});
      current = out;
    }
    return;
  }
  if (dynamic_cast<const torch::nn::ConvTranspose2dImpl*>(&module)) {
    auto out = take_target();
    slices.push_back({tprefix, sprefix, out, current, true, false});
    current = out;
    return;
  }
  if (dynamic_cast<const torch::nn::BatchNorm2dImpl*>(&module) ||
      dynamic_cast<const torch::nn::InstanceNorm2dImpl*>(&module)) {
    slices.push_back({tprefix, sprefix, current, Channels(), false, false});
    return;
  }
  for (const auto& child : module.named_children()) {
    walk(*child.value(), tprefix + "." + child.key(), sprefix + "." + child.key(), current, targets, slices);
  }
}

Channels mask_channels(const Masks& masks, const nn::PruneMask& m) {
  if (m.channels.defined()) return m.channels.to(torch::kCPU, torch::kLong);
  return m.all ? Channels() : masks.get(m.role, m.block, m.slot);
}

// The family's plan made into slices: main-path segments share the activation's channels and the
// plan's main targets; a residual branch starts from its input's channels (the trunk's unless the
// plan says otherwise) with its own targets.
std::vector<LayerSlice> slices_of(const nn::PrunePlan& plan, const Masks& masks) {
  std::deque<Channels> main_targets;
  for (const auto& m : plan.main_targets) main_targets.push_back(mask_channels(masks, m));
  std::vector<LayerSlice> slices;
  Channels current;
  for (const auto& segment : plan.segments) {
    if (!segment.residual_branch) {
      walk(*segment.module, segment.teacher_prefix, segment.student_prefix, current, main_targets, slices);
      continue;
    }
    std::deque<Channels> targets;
    for (const auto& m : segment.targets) targets.push_back(mask_channels(masks, m));
    Channels branch_current = mask_channels(masks, segment.input);
    walk(*segment.module, segment.teacher_prefix, segment.student_prefix, branch_current, targets, slices);
  }
  return slices;
}

torch::Tensor slice_tensor(const torch::Tensor& t, const LayerSlice& s, bool is_weight) {
  auto pick = [](torch::Tensor x, int64_t dim, const Channels& c) {
    return c.defined() ? x.index_select(dim, c.to(x.device())) : x;
  };
  if (t.dim() == 0) return t;
  if (t.dim() == 1 || !is_weight) return pick(t, 0, s.out);
  if (s.transposed) return pick(pick(t, 0, s.in), 1, s.out);  // [C_in, C_out, kH, kW]
  auto r = pick(t, 0, s.out);
  return s.depthwise ? r : pick(r, 1, s.in);
}

void inherit_weights(const nn::GeneratorImpl& teacher, nn::GeneratorImpl& student,
                     const std::vector<LayerSlice>& slices) {
  std::map<std::string, torch::Tensor> source;
  for (const auto& p : teacher.named_parameters()) source[p.key()] = p.value();
  for (const auto& b : teacher.named_buffers()) source[b.key()] = b.value();
  std::map<std::string, torch::Tensor> target;
  for (const auto& p : student.named_parameters()) target[p.key()] = p.value();
  for (const auto& b : student.named_buffers()) target[b.key()] = b.value();

  std::set<std::string> written;
  torch::NoGradGuard no_grad;
  for (const auto& slice : slices) {
    for (const char* suffix : {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}) {
      const auto tkey = slice.teacher_prefix + "." + suffix;
      const auto skey = slice.student_prefix + "." + suffix;
      auto src = source.find(tkey);
      if (src == source.end()) continue;
      auto dst = target.find(skey);
      if (dst == target.end()) throw Error("pruning: student has no tensor '" + skey + "' for teacher's '" + tkey + "'");
      const auto value = slice_tensor(src->second, slice, std::string(suffix) == "weight");
      if (value.sizes() != dst->second.sizes()) {
        throw Error("pruning: sliced '" + tkey + "' has shape " + c10::str(value.sizes()) + " but student's '" + skey +
                    "' has " + c10::str(dst->second.sizes()));
      }
      dst->second.copy_(value);
      written.insert(skey);
    }
  }
  for (const auto& [key, tensor] : target) {
    if (!written.count(key)) throw Error("pruning: no teacher weights were mapped onto student tensor '" + key + "'");
  }
}

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

int64_t count_generator_macs(const nn::ArchConfig& config, int64_t input_size, const nn::MacRules& rules) {
  // Every layer's output area is (input / 2^k)^2 when the input is a multiple of the family's size
  // multiple 2^K (k <= K), so profiling at a smaller such multiple and scaling by the area ratio is exact.
  const int64_t multiple = nn::size_multiple(config);
  int64_t small = input_size;
  while (small % (2 * multiple) == 0 && small / 2 >= 16) small /= 2;
  const auto profile = nn::profile_generator(config, small, torch::kCPU, rules);
  const int64_t ratio = (input_size / small) * (input_size / small);
  return profile.macs * ratio;
}

nn::GeneratorWidths widths_at_threshold(const nn::GeneratorImpl& teacher, double threshold, int min_channels,
                                        const ChannelRounding& round) {
  const auto norms = scored_norms_or_explain(teacher);
  const auto& hooks = prune_hooks(teacher);
  return student_from_masks(masks_at_threshold(norms, threshold, min_channels, round, hooks), teacher.config(),
                            hooks)
      .widths;
}

std::pair<double, double> gamma_range(const nn::GeneratorImpl& teacher) {
  double lo = std::numeric_limits<double>::infinity(), hi = 0;
  for (const auto& n : scored_norms_or_explain(teacher)) {
    const auto g = n.weight().detach().abs().to(torch::kCPU, torch::kFloat32);
    lo = std::min(lo, g.min().item<double>());
    hi = std::max(hi, g.max().item<double>());
  }
  return {lo, hi};
}

PruneResult prune_at_threshold(const nn::GeneratorImpl& teacher, double threshold, const PruneOptions& options) {
  const double start = now_seconds();
  const auto norms = scored_norms_or_explain(teacher);
  const auto& hooks = prune_hooks(teacher);
  const auto& tcfg = teacher.config();
  const auto masks = masks_at_threshold(norms, threshold, options.min_channels, options.rounding, hooks);

  PruneResult result;
  result.threshold = threshold;
  result.config = student_from_masks(masks, tcfg, hooks);
  result.student = nn::make_generator(result.config);
  if (options.inherit_weights && hooks.plan) {
    const auto slices = slices_of(hooks.plan(teacher, norms, result.config), masks);
    inherit_weights(teacher, *result.student, slices);
  }
  const auto device = teacher.parameters().empty() ? torch::Device(torch::kCPU) : teacher.parameters()[0].device();
  result.student->to(device);
  result.student->train(teacher.is_training());
  result.inherited = options.inherit_weights && hooks.plan;
  result.macs_before = budget_macs(tcfg, options.input_size, {}, hooks);
  result.macs_after = budget_macs(result.config, options.input_size, {}, hooks);
  result.params_before = nn::count_parameters(teacher);
  result.params_after = nn::count_parameters(*result.student);
  result.seconds = now_seconds() - start;
  return result;
}

ThresholdSearch search_threshold(float lo, float hi, double target_macs, const std::function<int64_t(double)>& macs_at,
                                 int max_steps) {
  ThresholdSearch s;
  int64_t last_macs = 0;
  bool last_met = false;
  // CAT's loop condition, negated: an interval within 1e-3 relative and a last probe that met the budget.
  auto done = [&] { return std::abs(hi - lo) <= 1e-3f * lo && last_met; };
  while (!done() && s.steps < max_steps) {
    ++s.steps;
    const float mid = (lo + hi) / 2.0f;
    last_macs = macs_at(mid);
    last_met = static_cast<double>(last_macs) <= target_macs;
    (last_met ? hi : lo) = mid;
  }
  s.threshold = hi;  // == the last midpoint when the rule stopped the loop
  s.macs = last_met ? last_macs : macs_at(hi);
  return s;
}

PruneResult prune_to_mac_budget(const nn::GeneratorImpl& teacher, const PruneOptions& options) {
  const double start = now_seconds();
  require(options.target_macs > 0, "the MAC budget must be positive");
  const auto& hooks = prune_hooks(teacher);
  const auto& tcfg = teacher.config();
  const int64_t multiple = nn::size_multiple(tcfg);
  require(options.input_size >= 16 && options.input_size % multiple == 0,
          "--input-size must be a multiple of " + std::to_string(multiple) + " and >= 16, got " +
              std::to_string(options.input_size));
  const auto norms = scored_norms_or_explain(teacher);

  torch::Tensor all = torch::cat([&] {
    std::vector<torch::Tensor> g;
    for (const auto& n : norms) g.push_back(n.weight().detach().abs().to(torch::kCPU, torch::kFloat32).flatten());
    return g;
  }());
  const auto search_rules = nn::MacRules::cat_search();
  auto macs_at = [&](double t) {
    const nn::ArchConfig c = student_from_masks(masks_at_threshold(norms, t, options.min_channels, options.rounding, hooks), tcfg, hooks);
    return budget_macs(c, options.input_size, search_rules, hooks);
  };

  ThresholdSearch search;
  search.macs = budget_macs(tcfg, options.input_size, search_rules, hooks);
  if (static_cast<double>(search.macs) > options.target_macs) {
    const float hi = all.max().item<float>();
    const int64_t smallest = macs_at(hi);
    if (static_cast<double>(smallest) > options.target_macs) {
      throw UsageError("the budget " + nn::format_macs(static_cast<int64_t>(options.target_macs)) +
                       " MACs is below the smallest network the pruning rule can build from this teacher (" +
                       nn::format_macs(smallest) + " at " + std::to_string(options.input_size) + "x" +
                       std::to_string(options.input_size) + " with --min-channels " +
                       std::to_string(options.min_channels) + ", BatchNorm left out as CAT's search does)");
    }
    search = search_threshold(all.min().item<float>(), hi, options.target_macs, macs_at);
  }
  auto result = prune_at_threshold(teacher, search.threshold, options);
  result.search_macs = budget_macs(result.config, options.input_size, search_rules, hooks);
  result.search_steps = search.steps;
  result.seconds = now_seconds() - start;
  return result;
}

}  // namespace ganlite::compress
