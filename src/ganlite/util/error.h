// Error types: the CLI maps UsageError to exit code 2 and every other Error to 1.
#pragma once
#include <stdexcept>
#include <string>
#include <vector>

namespace ganlite {

// A runtime failure the user can act on (bad file, bad data, numeric blow-up).
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A bad option or choice; the message names the input and, for a choice, the valid values.
class UsageError : public Error {
 public:
  using Error::Error;
};

// "a | b | c" for join_names({a, b, c}, " | ").
std::string join_names(const std::vector<std::string>& names, const std::string& separator);

// "unknown norm 'foo' (valid: instance, batch)" as a UsageError.
[[noreturn]] void throw_bad_choice(const std::string& what, const std::string& value,
                                   const std::vector<std::string>& valid);

// Throws UsageError(message) unless `condition` holds.
void require(bool condition, const std::string& message);

}  // namespace ganlite
