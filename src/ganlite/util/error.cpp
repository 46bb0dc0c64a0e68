#include "ganlite/util/error.h"

namespace ganlite {

std::string join_names(const std::vector<std::string>& names, const std::string& separator) {
  std::string s;
  for (const auto& name : names) s += (s.empty() ? "" : separator) + name;
  return s;
}

void throw_bad_choice(const std::string& what, const std::string& value, const std::vector<std::string>& valid) {
  throw UsageError("unknown " + what + " '" + value + "' (valid: " + join_names(valid, ", ") + ")");
}

void require(bool condition, const std::string& message) {
  if (!condition) throw UsageError(message);
}

}  // namespace ganlite
