// Lookups shared by the library's registries (distillation methods, generator families,
// discriminator kinds, training tasks, lowering passes): each keeps a vector of entries with a
// `name` field, in the order of its explicit list, and answers these questions about it.
#pragma once
#include <set>
#include <string>
#include <vector>

#include "ganlite/util/error.h"

namespace ganlite {

// The entries' names, in registry order (the order of every "valid: ..." message).
template <class Entry>
std::vector<std::string> entry_names(const std::vector<Entry>& entries) {
  std::vector<std::string> names;
  for (const auto& e : entries) names.push_back(e.name);
  return names;
}

// nullptr when no entry has this name.
template <class Entry>
const Entry* find_entry(const std::vector<Entry>& entries, const std::string& name) {
  for (const auto& e : entries) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

// The entry named `name`, else UsageError "unknown <what> 'x' (valid: ...)".
template <class Entry>
const Entry& entry_or_throw(const std::vector<Entry>& entries, const std::string& name, const std::string& what) {
  const auto* e = find_entry(entries, name);
  if (!e) throw_bad_choice(what, name, entry_names(entries));
  return *e;
}

// Error (a programming mistake, caught by any test) when two entries share a name.
template <class Entry>
void check_unique_names(const std::vector<Entry>& entries, const std::string& what) {
  std::set<std::string> names;
  for (const auto& e : entries) {
    if (!names.insert(e.name).second) throw Error(what + " '" + e.name + "' is registered twice");
  }
}

}  // namespace ganlite
