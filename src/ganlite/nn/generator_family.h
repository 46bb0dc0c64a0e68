// Generator architectures as registered families. Each family (resnet_generator.cpp,
// unet_generator.cpp, mobile_resnet_generator.cpp, inception_generator.cpp, spade_generator.cpp,
// inception_spade_generator.cpp) describes itself in
// a GeneratorFamily: how to build it, the facts the rest of ganlite needs about a config of it
// (input size multiple, convolution weights, per-layer widths, default norms, profile rule, one
// line for reports) and optional hooks for CAT pruning (compress/prune.h) and for importing the
// public PyTorch code's state dicts (io/import_pth.h). Nothing outside a family's unit names it.
//
// A new family: one unit defining `GeneratorFamily <name>_generator_family()` and one line in
// GANLITE_GENERATOR_FAMILIES (generator_family.cpp). docs/architecture.md, "Extending ganlite".
#pragma once
#include <torch/nn/module.h>
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ganlite/nn/arch_config.h"
#include "ganlite/nn/generator.h"
#include "ganlite/nn/import_keys.h"

namespace ganlite::nn {

// The channels one layer keeps in CAT pruning: those of the scored norm (role, block, slot),
// every channel (`all`, the output conv), or, when `channels` is defined, those indices (int64,
// ascending: a selection the family makes itself, e.g. inception_spade's trunk and up-block outputs).
struct PruneMask {
  NormRole role = NormRole::stem;
  int block = -1;
  int slot = -1;
  bool all = false;
  torch::Tensor channels{};
};

// A part of the teacher that compress/prune.cpp walks in execution order, slicing each conv's
// output to the next target mask and its input to the activation's current mask.
struct PruneSegment {
  std::string teacher_prefix, student_prefix;  // state-dict prefixes (they differ when branches vanish)
  std::shared_ptr<torch::nn::Module> module;   // the teacher's
  // false: on the main path (its input is the previous main segment's output; its convs take the
  // plan's next `main_targets`). true: a residual branch reading `input` (the trunk unless the
  // family says otherwise), its convs taking `targets` in order.
  bool residual_branch = false;
  std::vector<PruneMask> targets;
  PruneMask input{NormRole::trunk};
};

struct PrunePlan {
  std::vector<PruneMask> main_targets;
  std::vector<PruneSegment> segments;
};

struct PruneHooks {
  // Channels a block's scored norm keeps at least: 1 where the block's second conv still writes
  // the trunk (ResNet), 0 where a branch may vanish (inception).
  int block_floor = 1;
  // The slicing plan from `teacher` (its scored norms given) to the student `student` (its config,
  // widths written out); without it the student starts from fresh weights.
  std::function<PrunePlan(const GeneratorImpl& teacher, const std::vector<ScoredNorm>& norms,
                          const ArchConfig& student)>
      plan;
  // Optional, for families whose student is more than the teacher with other widths
  // (inception_spade: CAT rounds the trunk to a multiple of 16 and derives ngf from it): the
  // student's config from the channels each scored norm (role, block, slot) keeps. A family with
  // this and no `plan` is prunable; its students start from fresh weights.
  std::function<ArchConfig(const ArchConfig& teacher, const std::function<int(NormRole, int, int)>& kept)>
      student_config;
  // Optional: MACs of a config at the family's training resolution (ArchConfig::input_height /
  // input_width), counting BatchNorm or not (MacRules); unset: profiled at --input-size.
  std::function<int64_t(const ArchConfig&, bool count_batchnorm)> macs;
};

struct GeneratorFamily {
  std::string name;         // ArchConfig::arch, --arch
  std::string description;  // one line: the public code it follows
  // Builds the module for a validated config (make_generator initialises its weights).
  std::function<Generator(const ArchConfig&)> build;
  // The side multiple its input must have (nn::size_multiple).
  std::function<int64_t(const ArchConfig&)> size_multiple;
  // Convolution weights from the config alone (ArchConfig::conv_weight_count).
  std::function<int64_t(const ArchConfig&)> conv_weight_count;
  // Depth given by num_downs (written to JSON, reports and metadata) instead of n_blocks.
  bool uses_num_downs = false;
  // Per-layer widths (ArchConfig::widths): entries per block, 0 when the family has none; and the
  // unpruned widths for a config (required when widths_per_block > 0).
  size_t widths_per_block = 0;
  std::function<GeneratorWidths(const ArchConfig&)> default_widths;
  // The number of blocks widths.blocks lists; unset: n_blocks (spade families have a fixed count).
  std::function<int(const ArchConfig&)> block_count;
  // Widths are widths.blocks alone (stem .. up2 stay 0; ngf sets the trunk): inception_spade.
  bool block_widths_only = false;
  // Where the distillation taps sit (GeneratorImpl::tap_names gives their keys).
  std::string taps;

  // Optional. Checks beyond the common fields (ArchConfig::validate), UsageError naming the field.
  std::function<void(const ArchConfig&)> validate;
  // Default norms as CAT's teachers: the generator's norm has scales (the task's choice, batch or
  // instance_affine: the scales are what pruning ranks) and D gets the generator's norm made
  // affine. false: InstanceNorm without affine for both, as methods.md 1.1.
  bool scaled_norm_defaults = false;
  // `ganlite profile --input-size` rule (UsageError); unset: any size the forward accepts.
  std::function<void(const ArchConfig&, int64_t input_size)> check_profile_size;
  // `ganlite profile` without --input-size: height, width (unset: 256x256). GauGAN's: the config's
  // training resolution, 256x512 by default.
  std::function<std::pair<int64_t, int64_t>(const ArchConfig&)> default_profile_size;
  // One line for reports; unset: "<name> ngf N, B blocks" (+ " (pruned widths)").
  std::function<std::string(const ArchConfig&)> describe;
  // CAT pruning; without a plan the family cannot be pruned (prune says so).
  PruneHooks prune;
  // Reads the public code's state dict; without it `ganlite import` refuses the family.
  ImportHook import_state_dict;
};

// Every registered family, in GANLITE_GENERATOR_FAMILIES order (resnet, unet, mobile_resnet,
// inception, spade, inception_spade: the order of every list of valid names).
const std::vector<GeneratorFamily>& generator_families();
std::vector<std::string> generator_family_names();
// nullptr when no family has this name.
const GeneratorFamily* find_generator_family(const std::string& name);
// UsageError "unknown architecture 'x' (valid: ...)" for an unknown name.
const GeneratorFamily& generator_family(const std::string& name);
// Names of the families with a pruning plan.
std::vector<std::string> prunable_generator_families();
// One line for reports: the family's `describe`, else "<arch> ngf N, B blocks" and " (pruned
// widths)" when widths are given.
std::string describe_generator(const ArchConfig& config);
// GeneratorFamily::scaled_norm_defaults of `arch`; false for an unknown arch (validation names it).
bool uses_scaled_norm_defaults(const std::string& arch);
// The discriminator norm when none is given: the generator's made affine for a family with
// scaled_norm_defaults, else "instance".
std::string default_discriminator_norm_for(const ArchConfig& generator);

// Shared by the families with a 7x7 stem, two stride-2 down convs, a trunk of blocks and two
// up convs back (resnet, mobile_resnet, inception): the unpruned widths with `block` per block,
// and the convolution weights given those of one block (trunk width, its middle widths).
GeneratorWidths encoder_decoder_widths(const ArchConfig& config, const std::vector<int>& block);
int64_t encoder_decoder_conv_weights(const ArchConfig& config,
                                     const std::function<int64_t(int64_t trunk, const std::vector<int>& mids)>& block);

}  // namespace ganlite::nn
