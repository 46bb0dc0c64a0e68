// The architecture of a generator: everything needed to rebuild it, serialised to JSON
// (inside checkpoint metadata and run configs).
#pragma once
#include <nlohmann/json_fwd.hpp>

#include <string>
#include <vector>

namespace ganlite::nn {

// Per-layer widths of a (possibly pruned) generator. 0 in a scalar field, or an empty
// `blocks`, means "the default for ngf". `blocks[i]` lists block i's middle widths:
//   resnet / mobile_resnet: {mid}            (the first conv / separable conv's output)
//   inception:              {res_k1, res_k3, res_k5, dw_k1, dw_k3, dw_k5}   (0 = branch absent)
struct GeneratorWidths {
  int stem = 0;   // after the 7x7 stem conv
  int down1 = 0;  // after the first stride-2 conv
  int trunk = 0;  // after the second stride-2 conv: the residual trunk's width
  int up1 = 0;    // after the first transposed conv
  int up2 = 0;    // after the second transposed conv
  std::vector<std::vector<int>> blocks;

  bool empty() const { return stem == 0 && down1 == 0 && trunk == 0 && up1 == 0 && up2 == 0 && blocks.empty(); }
  bool operator==(const GeneratorWidths& o) const {
    return stem == o.stem && down1 == o.down1 && trunk == o.trunk && up1 == o.up1 && up2 == o.up2 &&
           blocks == o.blocks;
  }
};

struct ArchConfig {
  std::string arch = "resnet";    // resnet | unet | mobile_resnet | inception
  int input_nc = 3;
  int output_nc = 3;
  int ngf = 64;
  int n_blocks = 9;               // resnet, mobile_resnet, inception
  int num_downs = 8;              // unet: 8 = unet_256, 7 = unet_128
  std::string norm = "instance";  // instance | instance_affine | batch | none
  std::string padding = "reflect";  // reflect | replicate | zero
  double dropout = 0.0;
  GeneratorWidths widths;         // empty: the unpruned widths for ngf

  // Throws UsageError naming the bad field and the valid values.
  void validate() const;
  // The same config with every default width written out (resnet-like arches only).
  ArchConfig with_resolved_widths() const;

  std::string to_json_string(int indent = -1) const;
  static ArchConfig from_json_string(const std::string& text);
  nlohmann::json to_json() const;
  static ArchConfig from_json(const nlohmann::json& j);

  bool operator==(const ArchConfig& o) const;
};

const std::vector<std::string>& valid_archs();
const std::vector<std::string>& valid_norms();
const std::vector<std::string>& valid_paddings();

}  // namespace ganlite::nn
