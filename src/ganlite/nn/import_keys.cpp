#include "ganlite/nn/import_keys.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "ganlite/util/error.h"
#include "ganlite/util/text.h"

namespace ganlite::nn {

namespace {

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

PublicStateDict::PublicStateDict(const StateDictTensors& tensors, std::string source)
    : tensors_(tensors), source_(std::move(source)) {
  for (const auto& [name, t] : tensors_) by_name_.emplace(name, t);
}

bool PublicStateDict::has_prefix(const std::string& prefix) const {
  return std::any_of(tensors_.begin(), tensors_.end(), [&](const auto& kv) { return starts_with(kv.first, prefix); });
}

torch::Tensor PublicStateDict::get(const std::string& key) const {
  auto it = by_name_.find(key);
  return it == by_name_.end() ? torch::Tensor() : it->second;
}

torch::Tensor PublicStateDict::need(const std::string& key, int64_t dims, const std::string& role,
                                    const std::string& arch) const {
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

std::vector<int> PublicStateDict::indices_under(const StateDictTensors& tensors, const std::string& prefix) {
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

void KeyRemap::add(const std::string& from, const std::string& to) {
  if (from == to) return;
  forward_[from] = to;
  backward_[to] = from;
}

std::string KeyRemap::apply(const std::map<std::string, std::string>& table, const std::string& key) {
  for (size_t pos = key.find('.'); pos != std::string::npos; pos = key.find('.', pos + 1)) {
    auto it = table.find(key.substr(0, pos + 1));
    if (it != table.end()) return it->second + key.substr(pos + 1);
  }
  return key;
}

std::string infer_import_norm(const PublicStateDict& d, const std::string& norm_prefix, const std::string& conv_prefix) {
  if (d.has(norm_prefix + ".running_mean")) return "batch";
  if (d.has(norm_prefix + ".weight")) return "instance_affine";
  return d.has(conv_prefix + ".bias") ? "instance" : "none";
}

void map_import_layers(const PublicStateDict& d, const std::string& file_prefix, const StateDictTensors& ours,
                       const std::string& our_prefix, KeyRemap& remap) {
  const std::vector<int> theirs = d.layer_indices(file_prefix);
  const std::vector<int> mine = PublicStateDict::indices_under(ours, our_prefix);
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

void check_import_option(const std::optional<int>& given, int inferred, const std::string& option,
                         const std::string& what, const std::string& source) {
  if (given && *given != inferred) {
    throw Error(source + ": " + option + " " + std::to_string(*given) + " disagrees with the file, whose " + what +
                " is " + std::to_string(inferred));
  }
}

void finish_import_widths(ArchConfig& config, const GeneratorWidths& widths, const std::optional<int>& ngf,
                          std::vector<std::string>& notes) {
  config.ngf = ngf.value_or(widths.stem);
  config.widths = widths;
  ArchConfig defaults = config;
  defaults.widths = {};
  if (defaults.with_resolved_widths().widths == widths) {
    config.widths = {};
  } else {
    notes.push_back("per-layer widths differ from the defaults for ngf " + std::to_string(config.ngf) +
                    " (a pruned or searched student): stored explicitly");
  }
}

}  // namespace ganlite::nn
