#include "ganlite/nn/generator_family.h"

#include "ganlite/util/registry.h"

// The registered families, in the order every list of valid names shows. Each unit defines
// `GeneratorFamily <x>_generator_family()`. The library is a static archive: an object file that
// registered itself from a static initialiser but that nothing references would be dropped by
// the linker, so the list is explicit. A new family adds one X(name) here.
#define GANLITE_GENERATOR_FAMILIES(X) X(resnet) X(unet) X(mobile_resnet) X(inception) X(spade) X(inception_spade)

namespace ganlite::nn {

#define GANLITE_DECLARE_GENERATOR_FAMILY(name) GeneratorFamily name##_generator_family();
GANLITE_GENERATOR_FAMILIES(GANLITE_DECLARE_GENERATOR_FAMILY)
#undef GANLITE_DECLARE_GENERATOR_FAMILY

namespace {

std::vector<GeneratorFamily> build_registry() {
#define GANLITE_LIST_GENERATOR_FAMILY(name) name##_generator_family(),
  std::vector<GeneratorFamily> families{GANLITE_GENERATOR_FAMILIES(GANLITE_LIST_GENERATOR_FAMILY)};
#undef GANLITE_LIST_GENERATOR_FAMILY
  check_unique_names(families, "generator family");
  for (const auto& f : families) {
    if (!f.build || !f.size_multiple || !f.conv_weight_count) {
      throw Error("generator family '" + f.name + "' lacks build, size_multiple or conv_weight_count");
    }
    if (f.widths_per_block > 0 && !f.default_widths) {
      throw Error("generator family '" + f.name + "' has per-layer widths but no default_widths");
    }
  }
  return families;
}

}  // namespace

const std::vector<GeneratorFamily>& generator_families() {
  static const std::vector<GeneratorFamily> families = build_registry();
  return families;
}

std::vector<std::string> generator_family_names() { return entry_names(generator_families()); }

const GeneratorFamily* find_generator_family(const std::string& name) {
  return find_entry(generator_families(), name);
}

const GeneratorFamily& generator_family(const std::string& name) {
  return entry_or_throw(generator_families(), name, "architecture");
}

std::vector<std::string> prunable_generator_families() {
  std::vector<std::string> names;
  for (const auto& f : generator_families()) {
    if (f.prune.plan || f.prune.student_config) names.push_back(f.name);
  }
  return names;
}

std::string describe_generator(const ArchConfig& config) {
  const GeneratorFamily& family = generator_family(config.arch);
  if (family.describe) return family.describe(config);
  std::string s = config.arch + " ngf " + std::to_string(config.ngf) + ", " + std::to_string(config.n_blocks) + " blocks";
  if (!config.widths.empty()) s += " (pruned widths)";
  return s;
}

bool uses_scaled_norm_defaults(const std::string& arch) {
  const GeneratorFamily* family = find_generator_family(arch);
  return family != nullptr && family->scaled_norm_defaults;
}

std::string default_discriminator_norm_for(const ArchConfig& generator) {
  if (!uses_scaled_norm_defaults(generator.arch)) return "instance";
  return generator.norm == "instance" ? "instance_affine" : generator.norm;
}

GeneratorWidths encoder_decoder_widths(const ArchConfig& config, const std::vector<int>& block) {
  GeneratorWidths w;
  w.stem = config.ngf;
  w.down1 = 2 * config.ngf;
  w.trunk = 4 * config.ngf;
  w.up1 = 2 * config.ngf;
  w.up2 = config.ngf;
  w.blocks.assign(static_cast<size_t>(config.n_blocks), block);
  return w;
}

int64_t encoder_decoder_conv_weights(const ArchConfig& config,
                                     const std::function<int64_t(int64_t trunk, const std::vector<int>& mids)>& block) {
  const auto w = config.with_resolved_widths().widths;
  int64_t n = int64_t{config.input_nc} * w.stem * 49 + int64_t{w.stem} * w.down1 * 9 + int64_t{w.down1} * w.trunk * 9;
  for (const auto& mids : w.blocks) n += block(w.trunk, mids);
  n += int64_t{w.trunk} * w.up1 * 9 + int64_t{w.up1} * w.up2 * 9 + int64_t{w.up2} * config.output_nc * 49;
  return n;
}

}  // namespace ganlite::nn
