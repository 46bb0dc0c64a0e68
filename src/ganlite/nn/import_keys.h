// What a generator family needs to read a state dict of the public PyTorch code (its import hook,
// GeneratorFamily::import_state_dict): the file's tensors with lookups that explain a missing key,
// a table renaming the file's layer indices to ours, and helpers shared by the families. The
// loading, matching and error reporting around the hook are io/import_pth.h's.
#pragma once
#include <torch/types.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ganlite/nn/arch_config.h"

namespace ganlite::nn {

using StateDictTensors = std::vector<std::pair<std::string, torch::Tensor>>;

struct ImportOptions {
  std::string arch;                   // a registered family (required)
  std::optional<int> ngf;             // nominal ngf; default: the stem's width
  std::optional<int> n_blocks;        // checked against the file (or adds trailing empty inception blocks)
  std::optional<int> num_downs;       // unet: checked against the file
  std::optional<std::string> norm;    // overrides the inferred norm
  std::optional<std::string> padding; // reflect (default) | replicate | zero (zero is inferred)
  std::optional<double> dropout;      // default 0
};

// The file's tensors by name, with lookups that explain what a missing tensor was needed for.
class PublicStateDict {
 public:
  PublicStateDict(const StateDictTensors& tensors, std::string source);
  const StateDictTensors& items() const { return tensors_; }
  const std::string& source() const { return source_; }

  bool has(const std::string& key) const { return by_name_.count(key) > 0; }
  bool has_prefix(const std::string& prefix) const;
  torch::Tensor get(const std::string& key) const;
  // The tensor `key` with `dims` dimensions; Error naming the key and its role otherwise.
  torch::Tensor need(const std::string& key, int64_t dims, const std::string& role, const std::string& arch) const;
  // Sorted indices of the layers directly under `prefix` ("model.10.conv_block.") holding tensors.
  std::vector<int> layer_indices(const std::string& prefix) const { return indices_under(tensors_, prefix); }
  static std::vector<int> indices_under(const StateDictTensors& tensors, const std::string& prefix);

 private:
  const StateDictTensors& tensors_;
  std::string source_;
  std::unordered_map<std::string, torch::Tensor> by_name_;
};

// Key prefixes renamed from the file's layout to ours ("model.10.conv_block.6." -> "...5.").
class KeyRemap {
 public:
  void add(const std::string& from, const std::string& to);
  std::string to_ours(const std::string& key) const { return apply(forward_, key); }
  std::string to_file(const std::string& key) const { return apply(backward_, key); }

 private:
  static std::string apply(const std::map<std::string, std::string>& table, const std::string& key);
  std::map<std::string, std::string> forward_, backward_;
};

// What a family's import hook read from the file.
struct ImportInference {
  ArchConfig config;
  std::string layout;              // which public code's key layout the file follows
  std::vector<std::string> notes;  // what was inferred, for the user
  // Called with the built generator's state dict to add the index remapping.
  std::function<void(const StateDictTensors& ours, KeyRemap& remap)> remap_layers;
};

using ImportHook = std::function<ImportInference(const PublicStateDict&, const ImportOptions&)>;

// The norm a public layer list used: BatchNorm keeps running statistics, an affine InstanceNorm
// has a weight only, a plain InstanceNorm has nothing (and, by the public use_bias rule, its
// convs have a bias), 'none' has nothing and bias-free convs.
std::string infer_import_norm(const PublicStateDict& d, const std::string& norm_prefix, const std::string& conv_prefix);

// Maps the file's i-th weighted layer under `file_prefix` to our i-th one under `our_prefix`.
void map_import_layers(const PublicStateDict& d, const std::string& file_prefix, const StateDictTensors& ours,
                       const std::string& our_prefix, KeyRemap& remap);

// Error when an option was given and disagrees with what the file holds.
void check_import_option(const std::optional<int>& given, int inferred, const std::string& option,
                         const std::string& what, const std::string& source);

// Sets config.ngf (given, or the stem's width) and keeps `widths` only where they differ from the
// defaults for that ngf (a pruned student), noting it.
void finish_import_widths(ArchConfig& config, const GeneratorWidths& widths, const std::optional<int>& ngf,
                          std::vector<std::string>& notes);

}  // namespace ganlite::nn
