#include "ganlite/util/error.h"

namespace ganlite {

void throw_bad_choice(const std::string& what, const std::string& value, const std::vector<std::string>& valid) {
  std::string list;
  for (const auto& v : valid) list += (list.empty() ? "" : ", ") + v;
  throw UsageError("unknown " + what + " '" + value + "' (valid: " + list + ")");
}

void require(bool condition, const std::string& message) {
  if (!condition) throw UsageError(message);
}

}  // namespace ganlite
