#include "ganlite/io/import_pth.h"

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <functional>
#include <map>
#include <set>
#include <unordered_map>

#include "ganlite/io/checkpoint.h"
#include "ganlite/nn/inception_generator.h"
#include "ganlite/util/error.h"

namespace ganlite::io {

namespace {

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string shape_text(torch::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string quoted_list(const std::vector<std::string>& keys) {
  constexpr size_t kShown = 5;
  std::string s;
  for (size_t i = 0; i < keys.size() && i < kShown; ++i) s += (i ? ", " : "") + ("'" + keys[i] + "'");
  if (keys.size() > kShown) s += " and " + std::to_string(keys.size() - kShown) + " more";
  return s;
}

// The file's tensors by name, with lookups that explain what a missing tensor was needed for.
class Dict {
 public:
  Dict(const NamedTensors& tensors, std::string source) : tensors_(tensors), source_(std::move(source)) {
    for (const auto& [name, t] : tensors_) by_name_.emplace(name, t);
  }
  const NamedTensors& items() const { return tensors_; }
  const std::string& source() const { return source_; }

  bool has(const std::string& key) const { return by_name_.count(key) > 0; }
  bool has_prefix(const std::string& prefix) const {
    return std::any_of(tensors_.begin(), tensors_.end(), [&](const auto& kv) { return starts_with(kv.first, prefix); });
  }
  torch::Tensor get(const std::string& key) const {
    auto it = by_name_.find(key);
    return it == by_name_.end() ? torch::Tensor() : it->second;
  }
  // The tensor `key` with `dims` dimensions; Error naming the key and its role otherwise.
  torch::Tensor need(const std::string& key, int64_t dims, const std::string& role, const std::string& arch) const {
    torch::Tensor t = get(key);
    if (!t.defined()) {
      std::vector<std::string> first;
      for (size_t i = 0; i < tensors_.size() && i < 4; ++i) first.push_back(tensors_[i].first);
      throw Error(source_ + ": missing key '" + key + "' (" + role + ") expected in a " + arch +
                  " state dict of the public code; the file's first keys are " + quoted_list(first));
    }
    if (t.dim() != dims) {
      throw Error(source_ + ": key '" + key + "' (" + role + ") has shape " + shape_text(t.sizes()) + ", expected " +
                  std::to_string(dims) + " dimensions");
    }
    return t;
  }
  // Sorted indices of the layers directly under `prefix` ("model.10.conv_block.") holding tensors.
  std::vector<int> layer_indices(const std::string& prefix) const { return indices_under(tensors_, prefix); }

  static std::vector<int> indices_under(const NamedTensors& tensors, const std::string& prefix) {
    std::set<int> found;
    for (const auto& kv : tensors) {
      if (!starts_with(kv.first, prefix)) continue;
      const std::string rest = kv.first.substr(prefix.size());
      const std::string head = rest.substr(0, rest.find('.'));
      // More than 9 digits is no layer index (and would overflow int): such keys stay unexpected.
      if (!head.empty() && head.size() <= 9 &&
          std::all_of(head.begin(), head.end(), [](unsigned char c) { return std::isdigit(c); })) {
        found.insert(std::stoi(head));
      }
    }
    return {found.begin(), found.end()};
  }

 private:
  const NamedTensors& tensors_;
  std::string source_;
  std::unordered_map<std::string, torch::Tensor> by_name_;
};

// Key prefixes renamed from the file's layout to ours ("model.10.conv_block.6." -> "...5.").
class Remap {
 public:
  void add(const std::string& from, const std::string& to) {
    if (from == to) return;
    forward_[from] = to;
    backward_[to] = from;
  }
  std::string to_ours(const std::string& key) const { return apply(forward_, key); }
  std::string to_file(const std::string& key) const { return apply(backward_, key); }

 private:
  static std::string apply(const std::map<std::string, std::string>& table, const std::string& key) {
    for (size_t pos = key.find('.'); pos != std::string::npos; pos = key.find('.', pos + 1)) {
      auto it = table.find(key.substr(0, pos + 1));
      if (it != table.end()) return it->second + key.substr(pos + 1);
    }
    return key;
  }
  std::map<std::string, std::string> forward_, backward_;
};

// The norm a public layer list used: BatchNorm keeps running statistics, an affine InstanceNorm
// has a weight only, a plain InstanceNorm has nothing (and, by the public use_bias rule, its
// convs have a bias), 'none' has nothing and bias-free convs.
std::string infer_norm(const Dict& d, const std::string& norm_prefix, const std::string& conv_prefix) {
  if (d.has(norm_prefix + ".running_mean")) return "batch";
  if (d.has(norm_prefix + ".weight")) return "instance_affine";
  return d.has(conv_prefix + ".bias") ? "instance" : "none";
}

// Maps the file's i-th weighted layer under `file_prefix` to our i-th one under `our_prefix`.
void map_layers(const Dict& d, const std::string& file_prefix, const NamedTensors& ours, const std::string& our_prefix,
                Remap& remap) {
  const std::vector<int> theirs = d.layer_indices(file_prefix);
  const std::vector<int> mine = Dict::indices_under(ours, our_prefix);
  if (theirs.size() != mine.size()) {
    auto list = [](const std::vector<int>& v) {
      std::string s;
      for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
      return s;
    };
    throw Error(d.source() + ": '" + file_prefix.substr(0, file_prefix.size() - 1) + "' has " +
                std::to_string(theirs.size()) + " layers with tensors (" + list(theirs) + ") but the inferred " +
                "architecture has " + std::to_string(mine.size()) + " (" + list(mine) +
                "); check --norm (a norm with weights adds layers)");
  }
  for (size_t i = 0; i < theirs.size(); ++i) {
    remap.add(file_prefix + std::to_string(theirs[i]) + ".", our_prefix + std::to_string(mine[i]) + ".");
  }
}

struct Inferred {
  nn::ArchConfig config;
  std::string layout;
  std::vector<std::string> notes;
  // Called with the built generator's state dict to add the index remapping.
  std::function<void(const NamedTensors& ours, Remap& remap)> remap_layers;
};

int to_int(int64_t v) { return static_cast<int>(v); }

void check_option(const std::optional<int>& given, int inferred, const std::string& option, const std::string& what,
                  const std::string& source) {
  if (given && *given != inferred) {
    throw Error(source + ": " + option + " " + std::to_string(*given) + " disagrees with the file, whose " + what +
                " is " + std::to_string(inferred));
  }
}

void finish_widths(nn::ArchConfig& config, const nn::GeneratorWidths& widths, const std::optional<int>& ngf,
                   std::vector<std::string>& notes) {
  config.ngf = ngf.value_or(widths.stem);
  config.widths = widths;
  nn::ArchConfig defaults = config;
  defaults.widths = {};
  if (defaults.with_resolved_widths().widths == widths) {
    config.widths = {};
  } else {
    notes.push_back("per-layer widths differ from the defaults for ngf " + std::to_string(config.ngf) +
                    " (a pruned or searched student): stored explicitly");
  }
}

Inferred infer_resnet_like(const Dict& d, const ImportOptions& opts) {
  const bool mobile = opts.arch == "mobile_resnet";
  const std::string& arch = opts.arch;
  Inferred out;
  nn::ArchConfig& c = out.config;
  c.arch = arch;
  nn::GeneratorWidths w;
  const torch::Tensor stem = d.need("model.1.weight", 4, "the 7x7 stem conv", arch);
  c.input_nc = to_int(stem.size(1));
  w.stem = to_int(stem.size(0));
  w.down1 = to_int(d.need("model.4.weight", 4, "the first stride-2 conv", arch).size(0));
  w.trunk = to_int(d.need("model.7.weight", 4, "the second stride-2 conv", arch).size(0));
  int n = 0;
  while (d.has_prefix("model." + std::to_string(10 + n) + ".conv_block.")) ++n;
  check_option(opts.n_blocks, n, "--n-blocks", "number of residual blocks (model.10 ...)", d.source());
  c.n_blocks = n;
  const std::string up0 = "model." + std::to_string(10 + n);
  const std::string up1 = "model." + std::to_string(13 + n);
  const std::string last = "model." + std::to_string(17 + n);
  w.up1 = to_int(d.need(up0 + ".weight", 4, "the first transposed conv", arch).size(1));
  w.up2 = to_int(d.need(up1 + ".weight", 4, "the second transposed conv", arch).size(1));
  c.output_nc = to_int(d.need(last + ".weight", 4, "the 7x7 output conv", arch).size(0));

  c.norm = opts.norm.value_or(infer_norm(d, "model.2", "model.1"));
  if (!opts.norm) out.notes.push_back("norm inferred from model.2: " + c.norm);

  bool file_has_dropout_layer = mobile;  // gan-compression's mobile blocks always hold a Dropout
  bool file_zero_padding = false;
  for (int b = 0; b < n; ++b) {
    const std::string block = "model." + std::to_string(10 + b) + ".conv_block.";
    // The block's convs: plain 3x3 convs, or the pointwise half of a separable conv.
    std::vector<int> convs;
    for (int j : d.layer_indices(block)) {
      const std::string key = block + std::to_string(j) + (mobile ? ".conv.2.weight" : ".weight");
      const torch::Tensor t = d.get(key);
      if (t.defined() && t.dim() == 4) convs.push_back(j);
    }
    if (convs.size() != 2) {
      throw Error(d.source() + ": '" + block.substr(0, block.size() - 1) + "' holds " + std::to_string(convs.size()) +
                  (mobile ? " separable convs (keys '<i>.conv.2.weight')" : " convs") + ", expected 2 for a " + arch +
                  " block" + (mobile ? "" : " (is this a mobile_resnet checkpoint?)"));
    }
    const torch::Tensor first = d.get(block + std::to_string(convs[0]) + (mobile ? ".conv.2.weight" : ".weight"));
    w.blocks.push_back({to_int(first.size(0))});
    const bool zero = convs[0] == 0;  // no pad layer in front: the convs pad themselves
    if (b == 0) file_zero_padding = zero;
    if (!mobile && convs[1] - convs[0] == (zero ? 4 : 5)) file_has_dropout_layer = true;
    if (mobile) {
      // SubMobileResnetGenerator declares the block's last norm over the middle width although it
      // normalises the trunk width: harmless without weights, unrepresentable (and unrunnable) with.
      const std::string norm_key = block + std::to_string(convs[1] + 1) + ".weight";
      const torch::Tensor t = d.get(norm_key);
      if (t.defined() && t.size(0) != w.trunk) {
        throw Error(d.source() + ": '" + norm_key + "' has " + std::to_string(t.size(0)) + " channels but the block " +
                    "outputs the trunk width " + std::to_string(w.trunk) + ": a gan-compression " +
                    "SubMobileResnetGenerator whose norms carry weights over the middle width cannot be represented " +
                    "by MobileResnetGenerator widths (PyTorch cannot run it either)");
      }
    }
  }
  if (n > 0) {
    if (opts.padding && (*opts.padding == "zero") != file_zero_padding) {
      throw Error(d.source() + ": --padding " + *opts.padding + " but the file's blocks " +
                  (file_zero_padding ? "have no pad layers (zero padding)" : "have pad layers (reflect or replicate)"));
    }
    c.padding = file_zero_padding ? "zero" : opts.padding.value_or("reflect");
    if (!file_zero_padding && !opts.padding) {
      out.notes.push_back("padding: reflect assumed (replicate has the same keys; use --padding replicate)");
    }
  } else {
    c.padding = opts.padding.value_or("reflect");
  }
  c.dropout = opts.dropout.value_or(0.0);
  finish_widths(c, w, opts.ngf, out.notes);

  if (mobile) {
    out.layout = c.widths.empty() ? "gan-compression MobileResnetGenerator"
                                  : "gan-compression SubMobileResnetGenerator (per-block widths)";
  } else {
    out.layout = file_has_dropout_layer ? "gan-compression ResnetGenerator (Dropout layer in every block)"
                                        : "pytorch-CycleGAN-and-pix2pix ResnetGenerator";
  }
  out.remap_layers = [&d, n](const NamedTensors& ours, Remap& remap) {
    for (int b = 0; b < n; ++b) {
      const std::string block = "model." + std::to_string(10 + b) + ".conv_block.";
      map_layers(d, block, ours, block, remap);
    }
  };
  return out;
}

Inferred infer_inception(const Dict& d, const ImportOptions& opts) {
  const std::string& arch = opts.arch;
  Inferred out;
  nn::ArchConfig& c = out.config;
  c.arch = arch;
  nn::GeneratorWidths w;
  const torch::Tensor stem = d.need("down_sampling.1.weight", 4, "the 7x7 stem conv", arch);
  c.input_nc = to_int(stem.size(1));
  w.stem = to_int(stem.size(0));
  w.down1 = to_int(d.need("down_sampling.4.weight", 4, "the first stride-2 conv", arch).size(0));
  w.trunk = to_int(d.need("down_sampling.7.weight", 4, "the second stride-2 conv", arch).size(0));
  w.up1 = to_int(d.need("up_sampling.0.weight", 4, "the first transposed conv", arch).size(1));
  w.up2 = to_int(d.need("up_sampling.3.weight", 4, "the second transposed conv", arch).size(1));
  c.output_nc = to_int(d.need("up_sampling.7.weight", 4, "the 7x7 output conv", arch).size(0));
  c.norm = opts.norm.value_or(infer_norm(d, "down_sampling.2", "down_sampling.1"));
  if (!opts.norm) out.notes.push_back("norm inferred from down_sampling.2: " + c.norm);

  // Blocks without tensors (no branch and a weightless norm) are invisible, except between others.
  const std::vector<int> present = d.layer_indices("features.");
  int n = present.empty() ? 0 : present.back() + 1;
  if (opts.n_blocks) {
    if (*opts.n_blocks < n) check_option(opts.n_blocks, n, "--n-blocks", "number of inception blocks", d.source());
    if (*opts.n_blocks > n) {
      out.notes.push_back("blocks " + std::to_string(n) + ".." + std::to_string(*opts.n_blocks - 1) +
                          " have no tensors in the file: added as empty (identity) blocks");
    }
    n = *opts.n_blocks;
  }
  c.n_blocks = n;

  // The branch kernel size comes from the conv shape: pruned-away branches shift the indices, so
  // index j of res_ops is not kernel kInceptionKernels[j] (CAT rebuilds students the same way).
  struct BranchMap {
    int block;
    bool res;
    int file_index;
    int slot;
  };
  std::vector<BranchMap> branches;
  for (int b = 0; b < n; ++b) {
    std::vector<int> widths(6, 0);
    for (int res = 1; res >= 0; --res) {
      const std::string ops = "features." + std::to_string(b) + (res ? ".res_ops." : ".dw_ops.");
      for (int j : d.layer_indices(ops)) {
        const std::string key = ops + std::to_string(j) + (res ? ".1.0.weight" : ".2.0.weight");
        const torch::Tensor conv = d.need(key, 4, res ? "the branch's kxk conv" : "the branch's depthwise conv", arch);
        const int64_t k = conv.size(3);
        const auto kernel = std::find(nn::kInceptionKernels.begin(), nn::kInceptionKernels.end(), k);
        if (kernel == nn::kInceptionKernels.end() || conv.size(2) != k) {
          throw Error(d.source() + ": '" + key + "' has kernel " + std::to_string(conv.size(2)) + "x" +
                      std::to_string(k) + "; CAT's inception branches use square kernels 1, 3 or 5");
        }
        const int slot = static_cast<int>(kernel - nn::kInceptionKernels.begin()) + (res ? 0 : 3);
        if (widths[static_cast<size_t>(slot)] != 0) {
          throw Error(d.source() + ": '" + key + "' is a second " + (res ? "res" : "dw") + " branch with kernel " +
                      std::to_string(k) + " in block " + std::to_string(b) +
                      "; ganlite's inception block has one branch per kernel size");
        }
        // Middle width: the res branch's first conv output, the dw branch's depthwise channels.
        widths[static_cast<size_t>(slot)] = to_int(conv.size(0));
        branches.push_back({b, res == 1, j, slot});
      }
    }
    w.blocks.push_back(widths);
  }
  c.padding = opts.padding.value_or("reflect");
  if (!opts.padding) out.notes.push_back("padding: reflect assumed (pad layers have no tensors; use --padding)");
  c.dropout = opts.dropout.value_or(0.0);
  finish_widths(c, w, opts.ngf, out.notes);
  const bool pruned = !c.widths.empty();
  out.layout = pruned ? "CAT InceptionGenerator (pruned student)" : "CAT InceptionGenerator";

  const auto block_widths = c.with_resolved_widths().widths.blocks;
  out.remap_layers = [branches, block_widths](const NamedTensors&, Remap& remap) {
    for (const auto& br : branches) {
      // Our index: the rank of the branch's slot among the block's present branches of its kind.
      const auto& wb = block_widths[static_cast<size_t>(br.block)];
      int ours = 0;
      for (int s = br.res ? 0 : 3; s < br.slot; ++s) ours += wb[static_cast<size_t>(s)] > 0 ? 1 : 0;
      const std::string ops = "features." + std::to_string(br.block) + (br.res ? ".res_ops." : ".dw_ops.");
      remap.add(ops + std::to_string(br.file_index) + ".", ops + std::to_string(ours) + ".");
    }
  };
  return out;
}

Inferred infer_unet(const Dict& d, const ImportOptions& opts) {
  const std::string& arch = opts.arch;
  Inferred out;
  nn::ArchConfig& c = out.config;
  c.arch = arch;
  const torch::Tensor outer = d.need("model.model.0.weight", 4, "the outermost down conv", arch);
  c.input_nc = to_int(outer.size(1));
  c.ngf = to_int(outer.size(0));
  check_option(opts.ngf, c.ngf, "--ngf", "outermost conv width (model.model.0.weight)", d.source());
  c.output_nc = to_int(d.need("model.model.3.weight", 4, "the outermost transposed conv", arch).size(1));
  std::string level = "model.model.1";
  int levels = 1;
  if (!d.has_prefix(level + ".model.")) d.need(level + ".model.1.weight", 4, "the second down conv", arch);
  // Descend while layer 3 is itself a skip block (the innermost block's layer 3 is its up conv).
  while (d.has_prefix(level + ".model.3.model.")) {
    level += ".model.3";
    ++levels;
  }
  c.num_downs = levels + 1;
  check_option(opts.num_downs, c.num_downs, "--num-downs", "U-Net depth (nested model.3 blocks, plus one)",
               d.source());
  c.norm = opts.norm.value_or(infer_norm(d, "model.model.1.model.2", "model.model.1.model.1"));
  if (!opts.norm) out.notes.push_back("norm inferred from model.model.1.model.2: " + c.norm);
  c.dropout = opts.dropout.value_or(0.0);
  if (opts.padding) c.padding = *opts.padding;
  out.layout = "pytorch-CycleGAN-and-pix2pix UnetGenerator";
  out.remap_layers = [](const NamedTensors&, Remap&) {};
  return out;
}

bool is_num_batches_tracked(const std::string& key) {
  return key == "num_batches_tracked" || ends_with(key, ".num_batches_tracked");
}

}  // namespace

ImportResult import_generator_state_dict(const NamedTensors& input, const ImportOptions& options,
                                         const std::string& source) {
  if (options.arch != "resnet" && options.arch != "mobile_resnet" && options.arch != "inception" &&
      options.arch != "unet") {
    throw_bad_choice("architecture", options.arch, nn::valid_archs());
  }
  if (input.empty()) throw Error(source + ": holds no tensors");
  std::vector<std::string> notes;
  // DataParallel saves every key under "module.".
  NamedTensors tensors = input;
  if (std::all_of(tensors.begin(), tensors.end(), [](const auto& kv) { return starts_with(kv.first, "module."); })) {
    for (auto& kv : tensors) kv.first = kv.first.substr(7);
    notes.push_back("stripped DataParallel's 'module.' prefix");
  }
  const Dict dict(tensors, source);
  Inferred inferred = options.arch == "inception" ? infer_inception(dict, options)
                      : options.arch == "unet"    ? infer_unet(dict, options)
                                                  : infer_resnet_like(dict, options);
  notes.insert(notes.end(), inferred.notes.begin(), inferred.notes.end());

  ImportResult result;
  result.layout = inferred.layout;
  result.notes = notes;
  result.tensors = tensors.size();
  result.generator = nn::make_generator(inferred.config);
  const NamedTensors ours = state_dict(*result.generator);
  Remap remap;
  inferred.remap_layers(ours, remap);

  std::unordered_map<std::string, torch::Tensor> targets;
  for (const auto& [name, t] : ours) targets.emplace(name, t);
  NamedTensors mapped;
  std::set<std::string> covered;
  std::vector<std::string> unexpected;
  const std::string arch_text = "the " + inferred.config.arch + " generator inferred from the file";
  for (const auto& [name, t] : tensors) {
    const std::string our_name = remap.to_ours(name);
    auto it = targets.find(our_name);
    if (it == targets.end()) {
      unexpected.push_back(name);
      continue;
    }
    if (t.sizes() != it->second.sizes()) {
      throw Error(source + ": shape mismatch for key '" + name + "'" +
                  (our_name != name ? " (ganlite's '" + our_name + "')" : std::string()) + ": the file has " +
                  shape_text(t.sizes()) + ", " + arch_text + " expects " + shape_text(it->second.sizes()));
    }
    if (!t.is_floating_point() && !is_num_batches_tracked(name)) {
      throw Error(source + ": key '" + name + "' holds a non-floating-point tensor");
    }
    covered.insert(our_name);
    mapped.emplace_back(our_name, t);
  }
  std::vector<std::string> missing;
  for (const auto& [name, t] : ours) {
    if (!covered.count(name) && !is_num_batches_tracked(name)) missing.push_back(remap.to_file(name));
  }
  if (!missing.empty()) {
    throw Error(source + ": missing key" + (missing.size() > 1 ? "s " : " ") + quoted_list(missing) + " needed by " +
                arch_text + " (" + inferred.config.to_json_string() + ")");
  }
  if (!unexpected.empty()) {
    throw Error(source + ": unexpected key" + (unexpected.size() > 1 ? "s " : " ") + quoted_list(unexpected) +
                " (not part of " + arch_text + "; wrong --arch?)");
  }
  load_state_dict(*result.generator, mapped, /*strict=*/true);
  result.generator->eval();
  return result;
}

ImportResult import_pth_generator(const std::filesystem::path& path, const ImportOptions& options) {
  return import_generator_state_dict(load_pth_state_dict(path), options, path.string());
}

}  // namespace ganlite::io
