#include "ganlite/io/import_pth.h"

#include <torch/torch.h>

#include <algorithm>
#include <set>
#include <unordered_map>

#include "ganlite/io/checkpoint.h"
#include "ganlite/nn/generator_family.h"
#include "ganlite/nn/spectral_norm.h"
#include "ganlite/util/error.h"
#include "ganlite/util/text.h"

namespace ganlite::io {

namespace {

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

// torch.nn.utils.spectral_norm saves NAME.weight_orig, NAME.weight_u and NAME.weight_v (GauGAN's
// generators, NVlabs/SPADE and CAT); folded into NAME.weight, as the inference models use.
void fold_spectral_norm(NamedTensors& tensors, std::vector<std::string>& notes) {
  const size_t count = nn::fold_spectral_norm(tensors);
  if (count == 0) return;
  notes.push_back("folded spectral norm (weight_orig / sigma) into " + std::to_string(count) + " conv weights");
}

}  // namespace

ImportResult import_generator_state_dict(const NamedTensors& input, const ImportOptions& options,
                                         const std::string& source) {
  const nn::GeneratorFamily& family = nn::generator_family(options.arch);
  if (!family.import_state_dict) {
    throw UsageError("importing the public code's " + options.arch + " generators is not supported");
  }
  if (input.empty()) throw Error(source + ": holds no tensors");
  std::vector<std::string> notes;
  // DataParallel saves every key under "module.".
  NamedTensors tensors = input;
  if (std::all_of(tensors.begin(), tensors.end(), [](const auto& kv) { return starts_with(kv.first, "module."); })) {
    for (auto& kv : tensors) kv.first = kv.first.substr(7);
    notes.push_back("stripped DataParallel's 'module.' prefix");
  }
  fold_spectral_norm(tensors, notes);
  const nn::PublicStateDict dict(tensors, source);
  nn::ImportInference inferred = family.import_state_dict(dict, options);
  notes.insert(notes.end(), inferred.notes.begin(), inferred.notes.end());

  ImportResult result;
  result.layout = inferred.layout;
  result.notes = notes;
  result.tensors = tensors.size();
  result.generator = nn::make_generator(inferred.config);
  const NamedTensors ours = state_dict(*result.generator);
  nn::KeyRemap remap;
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
