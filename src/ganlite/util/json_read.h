// Reading config JSON (run configs, the arch_config of model files) without narrowing: a value
// that does not fit its field's type, or lies outside the field's documented bounds, is refused
// with a UsageError naming the file and the field ("run/config.json: 'batch_size' must be an
// integer in [1, 1024], got 1099511627776"); nothing is converted silently.
#pragma once
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace ganlite {

// The most nested objects / arrays accepted in config JSON. ganlite's configs nest 4 levels; nlohmann's dump,
// copy and comparison recurse once per level, so a file nested a million deep would overflow
// the stack.
inline constexpr int kMaxJsonDepth = 64;

// Parses config text. UsageError "<file>: not valid JSON: ..." or "<file>: JSON nested deeper
// than 64 levels".
nlohmann::json parse_config_json(const std::string& text, const std::string& file);

// A JSON integer (or a float with an integral value) in [min, max]; `where` names it in the
// message ("run/config.json: 'ngf'").
int64_t json_integer(const nlohmann::json& value, const std::string& where, int64_t min, int64_t max);
// The same for the full uint64 range (seeds).
uint64_t json_unsigned(const nlohmann::json& value, const std::string& where);
// A finite JSON number in [min, max].
double json_number(const nlohmann::json& value, const std::string& where, double min, double max);

// The fields of one JSON object, each read with its bounds. Field names in messages carry
// `prefix` ("generator." for the generator section of a run config), after `file`.
class JsonFields {
 public:
  // UsageError unless `object` is a JSON object.
  JsonFields(const nlohmann::json& object, std::string file, std::string prefix = "");

  // "<file>: '<prefix><key>'", for messages about a field.
  std::string where(const std::string& key) const;
  // The value under `key`, or nullptr when the key is absent.
  const nlohmann::json* find(const std::string& key) const;

  // Each reads `key` into `out` when present and leaves `out` alone otherwise.
  void get(const std::string& key, int& out, int64_t min, int64_t max) const;
  void get(const std::string& key, int64_t& out, int64_t min, int64_t max) const;
  void get(const std::string& key, uint64_t& out) const;
  void get(const std::string& key, double& out, double min, double max) const;
  void get(const std::string& key, bool& out) const;
  void get(const std::string& key, std::string& out) const;
  void get(const std::string& key, std::vector<std::string>& out, size_t max_items) const;
  void get(const std::string& key, std::map<std::string, double>& out, size_t max_items, double min, double max) const;

  // UsageError naming the first key not in `known` (catches typos in hand-written configs).
  void refuse_unknown(const std::set<std::string>& known) const;

  // A nested object's fields ("generator" -> prefix "generator.").
  JsonFields object(const std::string& key) const;

 private:
  const nlohmann::json& object_;
  std::string file_;
  std::string prefix_;
};

}  // namespace ganlite
