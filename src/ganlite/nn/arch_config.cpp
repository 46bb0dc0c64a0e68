#include "ganlite/nn/arch_config.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "ganlite/nn/inception_generator.h"
#include "ganlite/util/error.h"
#include "ganlite/util/json_read.h"

namespace ganlite::nn {

namespace {
bool contains(const std::vector<std::string>& list, const std::string& v) {
  return std::find(list.begin(), list.end(), v) != list.end();
}
}  // namespace

int64_t size_multiple(const ArchConfig& config) {
  if (config.arch == "unet") return int64_t{1} << config.num_downs;
  return 4;
}

const std::vector<std::string>& valid_archs() {
  static const std::vector<std::string> v{"resnet", "unet", "mobile_resnet", "inception"};
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
  if (!contains(valid_archs(), arch)) throw_bad_choice("architecture", arch, valid_archs());
  if (!contains(valid_norms(), norm)) throw_bad_choice("norm", norm, valid_norms());
  if (!contains(valid_paddings(), padding)) throw_bad_choice("padding", padding, valid_paddings());
  require_in(input_nc, 1, kMaxImageChannels, "input_nc");
  require_in(output_nc, 1, kMaxImageChannels, "output_nc");
  require_in(ngf, 1, kMaxNgf, "ngf");
  require_in(n_blocks, 0, kMaxBlocks, "n_blocks");
  require(dropout >= 0.0 && dropout < 1.0, "dropout must be in [0, 1), got " + std::to_string(dropout));
  if (arch == "unet") require_in(num_downs, 5, kMaxNumDowns, "unet num_downs");
  if (!widths.empty()) {
    require(arch != "unet", "per-layer widths are not supported for the unet architecture");
    require(static_cast<int>(widths.blocks.size()) == n_blocks,
            "widths.blocks has " + std::to_string(widths.blocks.size()) + " entries but n_blocks is " +
                std::to_string(n_blocks));
    const size_t per_block = arch == "inception" ? 6 : 1;
    for (size_t i = 0; i < widths.blocks.size(); ++i) {
      require(widths.blocks[i].size() == per_block, "widths.blocks[" + std::to_string(i) + "] must have " +
                                                        std::to_string(per_block) + " entries for " + arch);
      for (int w : widths.blocks[i]) require_in(w, 0, kMaxWidth, "widths.blocks[" + std::to_string(i) + "]");
    }
    for (int w : {widths.stem, widths.down1, widths.trunk, widths.up1, widths.up2}) {
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

namespace {

// Convolution weights of the blocks that differ between the resnet-like generators.
int64_t block_conv_weights(const std::string& arch, int64_t trunk, const std::vector<int>& mids) {
  int64_t n = 0;
  if (arch == "resnet") return 2 * trunk * mids.at(0) * 9;  // two 3x3 convs trunk -> mid -> trunk
  if (arch == "mobile_resnet") {
    const int64_t mid = mids.at(0);  // two separable convs: depthwise 3x3, then pointwise 1x1
    return trunk * 9 + trunk * mid + mid * 9 + mid * trunk;
  }
  for (size_t j = 0; j < kInceptionKernels.size(); ++j) {  // inception: res branches, then dw branches
    const int64_t k2 = int64_t{kInceptionKernels[j]} * kInceptionKernels[j];
    const int64_t res = mids.at(j);
    const int64_t dw = mids.at(3 + j);
    n += 2 * trunk * res * k2;                 // k x k conv trunk -> res, then res -> trunk
    n += trunk * dw + dw * k2 + dw * trunk;    // 1x1 in, depthwise k x k, 1x1 out
  }
  return n;
}

}  // namespace

int64_t ArchConfig::conv_weight_count() const {
  if (arch == "unet") {
    // (outer, inner, input) of each level from the innermost out; 4x4 down and up convs, the
    // up conv taking the concatenated skip (2 inner) except at the innermost level.
    const int64_t g = ngf;
    int64_t n = 8 * g * 8 * g * 16 + 8 * g * 8 * g * 16;                 // innermost
    n += int64_t{num_downs - 5} * (8 * g * 8 * g * 16 + 16 * g * 8 * g * 16);  // middle at 8 ngf
    n += 4 * g * 8 * g * 16 + 16 * g * 4 * g * 16;
    n += 2 * g * 4 * g * 16 + 8 * g * 2 * g * 16;
    n += g * 2 * g * 16 + 4 * g * g * 16;
    n += int64_t{input_nc} * g * 16 + 2 * g * output_nc * 16;             // outermost
    return n;
  }
  const auto w = with_resolved_widths().widths;
  int64_t n = int64_t{input_nc} * w.stem * 49 + int64_t{w.stem} * w.down1 * 9 + int64_t{w.down1} * w.trunk * 9;
  for (const auto& mids : w.blocks) n += block_conv_weights(arch, w.trunk, mids);
  n += int64_t{w.trunk} * w.up1 * 9 + int64_t{w.up1} * w.up2 * 9 + int64_t{w.up2} * output_nc * 49;
  return n;
}

ArchConfig ArchConfig::with_resolved_widths() const {
  ArchConfig c = *this;
  if (arch == "unet" || !widths.empty()) return c;
  c.widths.stem = ngf;
  c.widths.down1 = 2 * ngf;
  c.widths.trunk = 4 * ngf;
  c.widths.up1 = 2 * ngf;
  c.widths.up2 = ngf;
  const int trunk = 4 * ngf;
  for (int i = 0; i < n_blocks; ++i) {
    if (arch == "inception") {
      c.widths.blocks.push_back(std::vector<int>(6, trunk / 6));
    } else {
      c.widths.blocks.push_back({trunk});
    }
  }
  return c;
}

nlohmann::json ArchConfig::to_json() const {
  nlohmann::json j{{"arch", arch},       {"input_nc", input_nc}, {"output_nc", output_nc}, {"ngf", ngf},
                   {"n_blocks", n_blocks}, {"norm", norm},         {"padding", padding},     {"dropout", dropout}};
  if (arch == "unet") j["num_downs"] = num_downs;
  if (!widths.empty()) {
    j["widths"] = {{"stem", widths.stem}, {"down1", widths.down1}, {"trunk", widths.trunk},
                   {"up1", widths.up1},   {"up2", widths.up2},     {"blocks", widths.blocks}};
  }
  return j;
}

namespace {

// widths.blocks: at most kMaxBlocks lists of at most 6 widths each, read before anything is sized
// by them (validate() checks the counts against n_blocks and the arch).
GeneratorWidths widths_from_json(const JsonFields& f) {
  GeneratorWidths w;
  for (const char* key : {"stem", "down1", "trunk", "up1", "up2"}) {
    if (f.find(key) == nullptr) throw UsageError(f.where(key) + " is missing");
  }
  f.get("stem", w.stem, 1, kMaxWidth);
  f.get("down1", w.down1, 1, kMaxWidth);
  f.get("trunk", w.trunk, 1, kMaxWidth);
  f.get("up1", w.up1, 1, kMaxWidth);
  f.get("up2", w.up2, 1, kMaxWidth);
  const auto* blocks = f.find("blocks");
  if (blocks == nullptr || !blocks->is_array() || blocks->size() > static_cast<size_t>(kMaxBlocks)) {
    throw UsageError(f.where("blocks") + " must be a list of at most " + std::to_string(kMaxBlocks) +
                     " lists of widths");
  }
  for (size_t i = 0; i < blocks->size(); ++i) {
    const auto& block = (*blocks)[i];
    const std::string where = f.where("blocks") + "[" + std::to_string(i) + "]";
    if (!block.is_array() || block.size() > 6) throw UsageError(where + " must be a list of at most 6 widths");
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
  const auto* widths = f.find("widths");
  if (widths != nullptr && !widths->is_null()) c.widths = widths_from_json(f.object("widths"));
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
