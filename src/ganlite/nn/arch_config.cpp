#include "ganlite/nn/arch_config.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "ganlite/nn/generator_family.h"
#include "ganlite/util/error.h"
#include "ganlite/util/json_read.h"

namespace ganlite::nn {

namespace {
bool contains(const std::vector<std::string>& list, const std::string& v) {
  return std::find(list.begin(), list.end(), v) != list.end();
}
}  // namespace

int64_t size_multiple(const ArchConfig& config) { return generator_family(config.arch).size_multiple(config); }

const std::vector<std::string>& valid_archs() {
  static const std::vector<std::string> v = generator_family_names();
  return v;
}
const std::vector<std::string>& valid_norms() {
  static const std::vector<std::string> v{"instance", "instance_affine", "batch", "none"};
  return v;
}
const std::vector<std::string>& valid_paddings() {
  static const std::vector<std::string> v{"reflect", "replicate", "zero"};
  return v;
}

namespace {

void require_in(int value, int min, int max, const std::string& field) {
  require(value >= min && value <= max, field + " must be in [" + std::to_string(min) + ", " + std::to_string(max) +
                                            "], got " + std::to_string(value));
}

}  // namespace

void ArchConfig::validate() const {
  const GeneratorFamily& family = generator_family(arch);
  if (!contains(valid_norms(), norm)) throw_bad_choice("norm", norm, valid_norms());
  if (!contains(valid_paddings(), padding)) throw_bad_choice("padding", padding, valid_paddings());
  require_in(input_nc, 1, kMaxImageChannels, "input_nc");
  require_in(output_nc, 1, kMaxImageChannels, "output_nc");
  require_in(ngf, 1, kMaxNgf, "ngf");
  require_in(n_blocks, 0, kMaxBlocks, "n_blocks");
  require(dropout >= 0.0 && dropout < 1.0, "dropout must be in [0, 1), got " + std::to_string(dropout));
  require_in(label_nc, 0, kMaxImageChannels - 1, "label_nc");
  require_in(input_height, 0, kMaxImageSide, "input_height");
  require_in(input_width, 0, kMaxImageSide, "input_width");
  require(!spectral_norm || arch == "spade",
          "spectral_norm (spectral-norm block convs in training) is for the spade architecture, not " + arch);
  if (family.validate) family.validate(*this);
  if (!widths.empty()) {
    require(family.widths_per_block > 0, "per-layer widths are not supported for the " + arch + " architecture");
    const int blocks = family.block_count ? family.block_count(*this) : n_blocks;
    require(static_cast<int>(widths.blocks.size()) == blocks,
            "widths.blocks has " + std::to_string(widths.blocks.size()) + " entries but the generator has " +
                std::to_string(blocks) + " blocks" + (family.block_count ? "" : " (n_blocks)"));
    const size_t per_block = family.widths_per_block;
    for (size_t i = 0; i < widths.blocks.size(); ++i) {
      require(widths.blocks[i].size() == per_block, "widths.blocks[" + std::to_string(i) + "] must have " +
                                                        std::to_string(per_block) + " entries for " + arch);
      for (int w : widths.blocks[i]) require_in(w, 0, kMaxWidth, "widths.blocks[" + std::to_string(i) + "]");
    }
    for (int w : {widths.stem, widths.down1, widths.trunk, widths.up1, widths.up2}) {
      if (family.block_widths_only) {
        require(w == 0, "the " + arch + " architecture takes only widths.blocks (ngf sets the trunk)");
        continue;
      }
      require(w > 0, "stem, down1, trunk, up1 and up2 widths must be positive when widths are given");
      require_in(w, 1, kMaxWidth, "stem, down1, trunk, up1 and up2 widths");
    }
  }
  const int64_t weights = conv_weight_count();
  require(weights <= kMaxConvWeights,
          "the " + arch + " generator would have " + std::to_string(weights) +
              " convolution weights, more than the limit of " + std::to_string(kMaxConvWeights) +
              " (2^30; the papers' largest has 11.4M): ngf, n_blocks or widths are too large");
}

int64_t ArchConfig::conv_weight_count() const { return generator_family(arch).conv_weight_count(*this); }

ArchConfig ArchConfig::with_resolved_widths() const {
  ArchConfig c = *this;
  const GeneratorFamily& family = generator_family(arch);
  if (family.widths_per_block == 0 || !widths.empty()) return c;
  c.widths = family.default_widths(*this);
  return c;
}

nlohmann::json ArchConfig::to_json() const {
  nlohmann::json j{{"arch", arch},       {"input_nc", input_nc}, {"output_nc", output_nc}, {"ngf", ngf},
                   {"n_blocks", n_blocks}, {"norm", norm},         {"padding", padding},     {"dropout", dropout}};
  const GeneratorFamily* family = find_generator_family(arch);  // also for a config not yet validated
  if (family != nullptr && family->uses_num_downs) j["num_downs"] = num_downs;
  if (!widths.empty()) {
    if (family != nullptr && family->block_widths_only) {
      j["widths"] = {{"blocks", widths.blocks}};
    } else {
      j["widths"] = {{"stem", widths.stem}, {"down1", widths.down1}, {"trunk", widths.trunk},
                     {"up1", widths.up1},   {"up2", widths.up2},     {"blocks", widths.blocks}};
    }
  }
  if (label_nc != 0) j["label_nc"] = label_nc;
  if (input_height != 0) j["input_height"] = input_height;
  if (input_width != 0) j["input_width"] = input_width;
  if (spectral_norm) j["spectral_norm"] = true;
  return j;
}

namespace {

// The most widths any family's block has (inception's 6).
size_t max_widths_per_block() {
  size_t most = 0;
  for (const auto& family : generator_families()) most = std::max(most, family.widths_per_block);
  return most;
}

// widths.blocks: at most kMaxBlocks lists of at most max_widths_per_block() widths each, read
// before anything is sized by them (validate() checks the counts against n_blocks and the arch).
// blocks_only: the family takes widths.blocks alone (block_widths_only).
GeneratorWidths widths_from_json(const JsonFields& f, bool blocks_only) {
  const size_t most = max_widths_per_block();
  GeneratorWidths w;
  if (!blocks_only) {
    for (const char* key : {"stem", "down1", "trunk", "up1", "up2"}) {
      if (f.find(key) == nullptr) throw UsageError(f.where(key) + " is missing");
    }
    f.get("stem", w.stem, 1, kMaxWidth);
    f.get("down1", w.down1, 1, kMaxWidth);
    f.get("trunk", w.trunk, 1, kMaxWidth);
    f.get("up1", w.up1, 1, kMaxWidth);
    f.get("up2", w.up2, 1, kMaxWidth);
  }
  const auto* blocks = f.find("blocks");
  if (blocks == nullptr || !blocks->is_array() || blocks->size() > static_cast<size_t>(kMaxBlocks)) {
    throw UsageError(f.where("blocks") + " must be a list of at most " + std::to_string(kMaxBlocks) +
                     " lists of widths");
  }
  for (size_t i = 0; i < blocks->size(); ++i) {
    const auto& block = (*blocks)[i];
    const std::string where = f.where("blocks") + "[" + std::to_string(i) + "]";
    if (!block.is_array() || block.size() > most) {
      throw UsageError(where + " must be a list of at most " + std::to_string(most) + " widths");
    }
    std::vector<int> mids;
    for (size_t k = 0; k < block.size(); ++k) {
      mids.push_back(static_cast<int>(json_integer(block[k], where + "[" + std::to_string(k) + "]", 0, kMaxWidth)));
    }
    w.blocks.push_back(std::move(mids));
  }
  return w;
}

}  // namespace

ArchConfig ArchConfig::from_json(const nlohmann::json& j, const std::string& file, const std::string& prefix) {
  const JsonFields f(j, file, prefix);
  ArchConfig c;
  f.get("arch", c.arch);
  f.get("input_nc", c.input_nc, 1, kMaxImageChannels);
  f.get("output_nc", c.output_nc, 1, kMaxImageChannels);
  f.get("ngf", c.ngf, 1, kMaxNgf);
  f.get("n_blocks", c.n_blocks, 0, kMaxBlocks);
  f.get("num_downs", c.num_downs, 5, kMaxNumDowns);
  f.get("norm", c.norm);
  f.get("padding", c.padding);
  f.get("dropout", c.dropout, 0.0, 1.0);
  f.get("label_nc", c.label_nc, 0, kMaxImageChannels - 1);
  f.get("input_height", c.input_height, 0, kMaxImageSide);
  f.get("input_width", c.input_width, 0, kMaxImageSide);
  f.get("spectral_norm", c.spectral_norm);
  const auto* widths = f.find("widths");
  if (widths != nullptr && !widths->is_null()) {
    const GeneratorFamily* family = find_generator_family(c.arch);
    c.widths = widths_from_json(f.object("widths"), family != nullptr && family->block_widths_only);
  }
  try {
    c.validate();
  } catch (const UsageError& e) {
    const std::string where = file.empty() ? "" : file + ": ";
    throw UsageError(where + (prefix.empty() ? "" : "'" + prefix.substr(0, prefix.size() - 1) + "': ") + e.what());
  }
  return c;
}

std::string ArchConfig::to_json_string(int indent) const { return to_json().dump(indent); }

ArchConfig ArchConfig::from_json_string(const std::string& text, const std::string& file) {
  return from_json(parse_config_json(text, file), file);
}

bool ArchConfig::operator==(const ArchConfig& o) const { return to_json() == o.to_json(); }

}  // namespace ganlite::nn
