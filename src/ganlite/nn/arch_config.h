// The architecture of a generator: everything needed to rebuild it, serialised to JSON
// (inside checkpoint metadata and run configs).
#pragma once
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace ganlite::nn {

// Upper bounds on an architecture, generous for real use (the papers' generators have ngf 64,
// 9 blocks, num_downs 8, 11.4M weights at most). A config or a model file's metadata asking for
// more is refused before anything is allocated.
inline constexpr int kMaxNgf = 1024;
inline constexpr int kMaxImageChannels = 1024;     // input_nc, output_nc
inline constexpr int kMaxBlocks = 64;              // n_blocks
inline constexpr int kMaxNumDowns = 13;            // unet: 2^13 = 8192, the largest image side
inline constexpr int kMaxImageSide = 8192;         // input_height, input_width
inline constexpr int kMaxWidth = 4 * kMaxNgf;      // any per-layer width (the trunk is 4 ngf)
// Convolution weights of the whole generator: 2^30 are 4 GiB in fp32 (16 GiB with gradients
// and Adam's moments), ~100x the largest generator of the papers.
inline constexpr int64_t kMaxConvWeights = int64_t{1} << 30;

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
  std::string arch = "resnet";    // resnet | unet | mobile_resnet | inception | spade | inception_spade
  int input_nc = 3;
  int output_nc = 3;
  int ngf = 64;
  int n_blocks = 9;               // resnet, mobile_resnet, inception
  int num_downs = 8;              // unet: 8 = unet_256, 7 = unet_128
  std::string norm = "instance";  // instance | instance_affine | batch | none
  std::string padding = "reflect";  // reflect | replicate | zero
  double dropout = 0.0;
  GeneratorWidths widths;         // empty: the unpruned widths for ngf
  // Label-map generators (spade, inception_spade): label_nc classes, input_nc = label_nc + 1 (one-hot
  // plus the instance-edge channel); 0: not given (input_nc alone says the channels). The training
  // resolution, what profiles and pruning budgets count at; 0: the family's default. Written to JSON
  // only when set, so older configs read and write as before.
  int label_nc = 0;
  int input_height = 0;
  int input_width = 0;
  // spade only: the block convs (conv_0, conv_1, conv_s) train with spectral norm (NVlabs/SPADE's
  // norm_G "spectral..."), their state dict holding weight_orig / weight_u / weight_v. Loading a
  // generator file folds them into plain weights and clears the flag (io::load_generator). Written
  // to JSON only when set.
  bool spectral_norm = false;

  // Throws UsageError naming the bad field and the valid values or bounds (the limits above).
  void validate() const;
  // The elements of the generator's convolution weights, computed from the config alone (no
  // module is built): a lower bound on its state dict, to check a model file's declared
  // architecture against the tensors it holds. Call on a validated config.
  int64_t conv_weight_count() const;
  // The same config with every default width written out (resnet-like arches only).
  ArchConfig with_resolved_widths() const;

  std::string to_json_string(int indent = -1) const;
  nlohmann::json to_json() const;
  // Strict and bounded (util/json_read.h): a field of the wrong type or out of bounds throws
  // UsageError naming `file` and the field (`prefix` + name, e.g. "generator.ngf"); the result
  // is validated.
  static ArchConfig from_json_string(const std::string& text, const std::string& file = "");
  static ArchConfig from_json(const nlohmann::json& j, const std::string& file = "", const std::string& prefix = "");

  bool operator==(const ArchConfig& o) const;
};

// The side multiple a generator's input must have: 4 for resnet / mobile_resnet / inception (two
// stride-2 stages), 2^num_downs for unet. Inputs of other sizes are padded to it (nn/translate.h).
int64_t size_multiple(const ArchConfig& config);

const std::vector<std::string>& valid_archs();
const std::vector<std::string>& valid_norms();
const std::vector<std::string>& valid_paddings();

}  // namespace ganlite::nn
