#include "ganlite/nn/arch_config.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "ganlite/util/error.h"

namespace ganlite::nn {

namespace {
bool contains(const std::vector<std::string>& list, const std::string& v) {
  return std::find(list.begin(), list.end(), v) != list.end();
}
}  // namespace

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

void ArchConfig::validate() const {
  if (!contains(valid_archs(), arch)) throw_bad_choice("architecture", arch, valid_archs());
  if (!contains(valid_norms(), norm)) throw_bad_choice("norm", norm, valid_norms());
  if (!contains(valid_paddings(), padding)) throw_bad_choice("padding", padding, valid_paddings());
  require(input_nc > 0 && output_nc > 0, "input_nc and output_nc must be positive");
  require(ngf > 0, "ngf must be positive, got " + std::to_string(ngf));
  require(n_blocks >= 0, "n_blocks must be >= 0, got " + std::to_string(n_blocks));
  require(dropout >= 0.0 && dropout < 1.0, "dropout must be in [0, 1), got " + std::to_string(dropout));
  if (arch == "unet") require(num_downs >= 5, "unet num_downs must be >= 5, got " + std::to_string(num_downs));
  if (!widths.empty()) {
    require(arch != "unet", "per-layer widths are not supported for the unet architecture");
    require(static_cast<int>(widths.blocks.size()) == n_blocks,
            "widths.blocks has " + std::to_string(widths.blocks.size()) + " entries but n_blocks is " +
                std::to_string(n_blocks));
    const size_t per_block = arch == "inception" ? 6 : 1;
    for (size_t i = 0; i < widths.blocks.size(); ++i) {
      require(widths.blocks[i].size() == per_block, "widths.blocks[" + std::to_string(i) + "] must have " +
                                                        std::to_string(per_block) + " entries for " + arch);
      for (int w : widths.blocks[i]) require(w >= 0, "negative width in widths.blocks[" + std::to_string(i) + "]");
    }
    for (int w : {widths.stem, widths.down1, widths.trunk, widths.up1, widths.up2}) {
      require(w > 0, "stem, down1, trunk, up1 and up2 widths must be positive when widths are given");
    }
  }
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

ArchConfig ArchConfig::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw Error("architecture config must be a JSON object");
  ArchConfig c;
  try {
    c.arch = j.value("arch", c.arch);
    c.input_nc = j.value("input_nc", c.input_nc);
    c.output_nc = j.value("output_nc", c.output_nc);
    c.ngf = j.value("ngf", c.ngf);
    c.n_blocks = j.value("n_blocks", c.n_blocks);
    c.num_downs = j.value("num_downs", c.num_downs);
    c.norm = j.value("norm", c.norm);
    c.padding = j.value("padding", c.padding);
    c.dropout = j.value("dropout", c.dropout);
    if (j.contains("widths") && !j["widths"].is_null()) {
      const auto& w = j["widths"];
      c.widths.stem = w.at("stem").get<int>();
      c.widths.down1 = w.at("down1").get<int>();
      c.widths.trunk = w.at("trunk").get<int>();
      c.widths.up1 = w.at("up1").get<int>();
      c.widths.up2 = w.at("up2").get<int>();
      c.widths.blocks = w.at("blocks").get<std::vector<std::vector<int>>>();
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("bad architecture config: ") + e.what());
  }
  c.validate();
  return c;
}

std::string ArchConfig::to_json_string(int indent) const { return to_json().dump(indent); }

ArchConfig ArchConfig::from_json_string(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("architecture config is not valid JSON: ") + e.what());
  }
  return from_json(j);
}

bool ArchConfig::operator==(const ArchConfig& o) const { return to_json() == o.to_json(); }

}  // namespace ganlite::nn
