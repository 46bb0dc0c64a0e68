#include "ganlite/io/checkpoint.h"

#include <torch/torch.h>

#include <charconv>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>

#include "ganlite/io/safetensors.h"
#include "ganlite/nn/generator_family.h"
#include "ganlite/nn/spectral_norm.h"
#include "ganlite/util/error.h"
#include "ganlite/util/text.h"

namespace ganlite::io {

namespace {

// PyTorch's order: a module's own parameters, then its own buffers, then each child in turn.
// (LibTorch's named_parameters() would list every parameter before any buffer.)
void collect_state(const torch::nn::Module& module, const std::string& prefix, NamedTensors& out) {
  for (const auto& p : module.named_parameters(/*recurse=*/false)) {
    if (p.value().defined()) out.emplace_back(prefix + p.key(), p.value());
  }
  for (const auto& b : module.named_buffers(/*recurse=*/false)) {
    if (b.value().defined()) out.emplace_back(prefix + b.key(), b.value());
  }
  for (const auto& child : module.named_children()) {
    collect_state(*child.value(), prefix + child.key() + ".", out);
  }
}

std::string version_string() {
#ifdef GANLITE_VERSION
  return GANLITE_VERSION;
#else
  return "unknown";
#endif
}

Metadata generator_metadata(const nn::ArchConfig& config) {
  Metadata meta;
  meta[kMetaFormat] = "ganlite";
  meta[kMetaKind] = "generator";
  meta[kMetaArch] = config.to_json_string();
  meta["ganlite_version"] = version_string();
  // Readable copies of the main fields, for `safetensors` viewers and Python users.
  meta["arch"] = config.arch;
  meta["ngf"] = std::to_string(config.ngf);
  meta["norm"] = config.norm;
  meta["padding"] = config.padding;
  meta["input_nc"] = std::to_string(config.input_nc);
  meta["output_nc"] = std::to_string(config.output_nc);
  if (nn::generator_family(config.arch).uses_num_downs) {
    meta["num_downs"] = std::to_string(config.num_downs);
  } else {
    meta["n_blocks"] = std::to_string(config.n_blocks);
  }
  // Written out for families with per-layer widths, "null" for the others.
  const nlohmann::json resolved = config.with_resolved_widths().to_json();
  meta["widths"] = resolved.contains("widths") ? resolved["widths"].dump() : "null";
  return meta;
}

void add_extra(Metadata& meta, const Metadata& extra) {
  for (const auto& [k, v] : extra) {
    if (meta.count(k)) throw UsageError("metadata key '" + k + "' is reserved by ganlite and cannot be overridden");
    meta[k] = v;
  }
}

}  // namespace

NamedTensors state_dict(const torch::nn::Module& module) {
  NamedTensors out;
  collect_state(module, "", out);
  return out;
}

void load_state_dict(torch::nn::Module& module, const NamedTensors& tensors, bool strict) {
  const NamedTensors own = state_dict(module);
  std::unordered_map<std::string, torch::Tensor> targets;
  for (const auto& [name, t] : own) targets.emplace(name, t);

  std::set<std::string> given;
  std::vector<std::string> unexpected;
  for (const auto& [name, t] : tensors) {
    if (!given.insert(name).second) throw Error("state dict has key '" + name + "' twice");
    auto it = targets.find(name);
    if (it == targets.end()) {
      unexpected.push_back(name);
      continue;
    }
    if (!t.defined()) throw Error("state dict key '" + name + "' holds an undefined tensor");
    // As in PyTorch, a shape mismatch is an error even when not strict.
    if (t.sizes() != it->second.sizes()) {
      throw Error("shape mismatch for key '" + name + "': the file has " + shape_text(t.sizes()) +
                  ", the model expects " + shape_text(it->second.sizes()));
    }
  }
  std::vector<std::string> missing;
  for (const auto& [name, t] : own) {
    // PyTorch fills a missing BatchNorm counter with 0 for checkpoints from before it existed.
    if (!given.count(name) && !is_num_batches_tracked(name)) missing.push_back(name);
  }
  if (strict && !missing.empty()) {
    throw Error("missing key" + std::string(missing.size() > 1 ? "s " : " ") + quoted_list(missing) +
                " (the file lacks " + std::to_string(missing.size()) + " of the model's " +
                std::to_string(own.size()) + " tensors)");
  }
  if (strict && !unexpected.empty()) {
    throw Error("unexpected key" + std::string(unexpected.size() > 1 ? "s " : " ") + quoted_list(unexpected) +
                " (not in the model)");
  }

  torch::NoGradGuard no_grad;
  for (const auto& [name, t] : tensors) {
    auto it = targets.find(name);
    if (it == targets.end()) continue;
    // copy_ converts the dtype to the target's and moves the data onto the target's device.
    it->second.copy_(t);
  }
}

void save_generator(const std::filesystem::path& path, nn::GeneratorImpl& generator, const Metadata& extra) {
  Metadata meta = generator_metadata(generator.config());
  add_extra(meta, extra);
  save_safetensors(path, state_dict(generator), meta);
}

int64_t metadata_integer(const Metadata& meta, const std::string& key, const std::filesystem::path& path,
                         int64_t min, int64_t max) {
  const auto it = meta.find(key);
  if (it == meta.end()) throw Error(path.string() + ": no '" + key + "' in the file's metadata");
  const std::string& text = it->second;
  int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < min || value > max) {
    throw Error(path.string() + ": metadata '" + key + "' must be an integer in [" + std::to_string(min) + ", " +
                std::to_string(max) + "], got '" + text.substr(0, 40) + "'");
  }
  return value;
}

nn::ArchConfig read_generator_arch(const std::filesystem::path& path) {
  // The header alone tells whether this is a generator file: no need to read the weights first.
  const SafetensorsHeader header = read_safetensors_header(path);
  const Metadata& meta = header.metadata;
  auto kind = meta.find(kMetaKind);
  if (kind != meta.end() && kind->second != "generator") {
    throw Error(path.string() + ": holds a " + kind->second + ", not a generator");
  }
  auto arch = meta.find(kMetaArch);
  if (arch == meta.end()) {
    throw Error(path.string() + ": the architecture is unknown (no '" + std::string(kMetaArch) +
                "' in the file's metadata, so it is not a ganlite generator file); convert a PyTorch "
                "checkpoint with `ganlite import`");
  }
  nn::ArchConfig config;
  try {
    config = nn::ArchConfig::from_json_string(arch->second, path.string() + ": " + kMetaArch);
  } catch (const UsageError& e) {
    throw Error(e.what());  // a bad file, not a bad option
  }
  // The declared network must fit in the tensors actually stored, or a few bytes of metadata
  // could make us build (allocate) a huge network before the weights fail to load. Building is
  // allowed up to twice the stored elements plus 1M weights (4 MB): a small mismatch is left to
  // the strict load, whose message names the missing or misshapen key.
  int64_t stored = 0;
  for (const auto& t : header.tensors) {
    int64_t numel = 1;
    for (int64_t d : t.shape) numel *= d;  // the header check bounds every product
    stored += numel;
  }
  const int64_t needed = config.conv_weight_count();
  if (needed > 2 * stored + (int64_t{1} << 20)) {
    throw Error(path.string() + ": " + kMetaArch + " declares a " + config.arch + " generator (ngf " +
                std::to_string(config.ngf) + ") with " + std::to_string(needed) +
                " convolution weights, but the file holds only " + std::to_string(stored) +
                " tensor elements: the metadata does not match the weights");
  }
  return config;
}

nn::Generator load_generator(const std::filesystem::path& path, const torch::Device& device) {
  nn::ArchConfig config = read_generator_arch(path);
  SafetensorsContents contents = load_safetensors(path);
  // A generator trained with spectral norm (ArchConfig::spectral_norm) is saved as trained, with
  // weight_orig / weight_u / weight_v so that a run resumes exactly; inference gets the eval-mode
  // weight weight_orig / sigma folded in and the plain generator (NVlabs' inference keys).
  if (config.spectral_norm) {
    try {
      nn::fold_spectral_norm(contents.tensors);
    } catch (const Error& e) {
      throw Error(path.string() + ": " + e.what());
    }
    config.spectral_norm = false;
  }
  nn::Generator generator = nn::make_generator(config);
  generator->to(device);
  try {
    load_state_dict(*generator, contents.tensors, /*strict=*/true);
  } catch (const Error& e) {
    throw Error(path.string() + ": " + e.what());
  }
  return generator;
}

void save_module(const std::filesystem::path& path, const torch::nn::Module& module, const Metadata& metadata) {
  Metadata meta = metadata;
  if (!meta.count(kMetaFormat)) meta[kMetaFormat] = "ganlite";
  if (!meta.count("ganlite_version")) meta["ganlite_version"] = version_string();
  save_safetensors(path, state_dict(module), meta);
}

Metadata load_module(const std::filesystem::path& path, torch::nn::Module& module, const torch::Device& device) {
  SafetensorsContents contents = load_safetensors(path);
  module.to(device);
  try {
    load_state_dict(module, contents.tensors, /*strict=*/true);
  } catch (const Error& e) {
    throw Error(path.string() + ": " + e.what());
  }
  return contents.metadata;
}

}  // namespace ganlite::io
