// Text for error messages that name tensors and state-dict keys, shared by the readers.
#pragma once
#include <c10/util/ArrayRef.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ganlite {

// "[2, 3, 4]"
inline std::string shape_text(c10::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// "'a', 'b', 'c', 'd', 'e' and 4 more"
inline std::string quoted_list(const std::vector<std::string>& items, size_t shown = 5) {
  std::string s;
  for (size_t i = 0; i < items.size() && i < shown; ++i) s += (i ? ", " : "") + ("'" + items[i] + "'");
  if (items.size() > shown) s += " and " + std::to_string(items.size() - shown) + " more";
  return s;
}

// BatchNorm's step counter (PyTorch saves it, LibTorch modules may lack it): never required.
inline bool is_num_batches_tracked(const std::string& key) {
  const std::string suffix = "num_batches_tracked";
  return key.size() >= suffix.size() && key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0 &&
         (key.size() == suffix.size() || key[key.size() - suffix.size() - 1] == '.');
}

// A tensor dimension as the int an architecture config holds.
inline int dim_int(int64_t v) { return static_cast<int>(v); }

}  // namespace ganlite
