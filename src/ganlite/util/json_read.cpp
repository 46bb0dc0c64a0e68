#include "ganlite/util/json_read.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ganlite/util/error.h"

namespace ganlite {

namespace {

// The value as it appears in the file, cut short: a message must not echo a megabyte of JSON.
std::string shown(const nlohmann::json& value) {
  constexpr size_t kShown = 60;
  std::string text = value.dump();
  if (text.size() > kShown) text = text.substr(0, kShown) + "...";
  return text;
}

std::string range_text(int64_t min, int64_t max) {
  return "[" + std::to_string(min) + ", " + std::to_string(max) + "]";
}

std::string number_text(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

}  // namespace

nlohmann::json parse_config_json(const std::string& text, const std::string& file) {
  const std::string name = file.empty() ? std::string("config") : file;
  // The parser itself is iterative; the callback stops it at the first value nested too deep,
  // before anything recursive (dump, copy) can see it.
  auto limit_depth = [&name](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
    using E = nlohmann::json::parse_event_t;
    // `depth` counts the containers around this one.
    if ((event == E::object_start || event == E::array_start) && depth >= kMaxJsonDepth) {
      throw UsageError(name + ": JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    }
    return true;
  };
  try {
    return nlohmann::json::parse(text, limit_depth);
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(name + ": not valid JSON: " + e.what());
  }
}

int64_t json_integer(const nlohmann::json& value, const std::string& where, int64_t min, int64_t max) {
  auto refuse = [&] {
    throw UsageError(where + " must be an integer in " + range_text(min, max) + ", got " + shown(value));
  };
  if (value.is_number_unsigned()) {
    const auto v = value.get<uint64_t>();
    if (max < 0 || v > static_cast<uint64_t>(max)) refuse();
    const auto s = static_cast<int64_t>(v);
    if (s < min) refuse();
    return s;
  }
  if (value.is_number_integer()) {
    const auto v = value.get<int64_t>();
    if (v < min || v > max) refuse();
    return v;
  }
  if (value.is_number_float()) {
    // 1e3 is an integer written as a float: accepted when exact and in range, never rounded.
    const double v = value.get<double>();
    if (!std::isfinite(v) || std::floor(v) != v || v < static_cast<double>(min) || v > static_cast<double>(max) ||
        std::fabs(v) >= 0x1p63) {
      refuse();
    }
    return static_cast<int64_t>(v);
  }
  refuse();
  return 0;  // unreachable
}

uint64_t json_unsigned(const nlohmann::json& value, const std::string& where) {
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  if (value.is_number_integer() && value.get<int64_t>() >= 0) return static_cast<uint64_t>(value.get<int64_t>());
  throw UsageError(where + " must be an integer in [0, " + std::to_string(std::numeric_limits<uint64_t>::max()) +
                   "], got " + shown(value));
}

double json_number(const nlohmann::json& value, const std::string& where, double min, double max) {
  if (value.is_number()) {
    const double v = value.get<double>();
    if (std::isfinite(v) && v >= min && v <= max) return v;
  }
  throw UsageError(where + " must be a number in [" + number_text(min) + ", " + number_text(max) + "], got " +
                   shown(value));
}

JsonFields::JsonFields(const nlohmann::json& object, std::string file, std::string prefix)
    : object_(object), file_(std::move(file)), prefix_(std::move(prefix)) {
  if (!object_.is_object()) {
    const std::string what = prefix_.empty() ? "the config" : "'" + prefix_.substr(0, prefix_.size() - 1) + "'";
    throw UsageError((file_.empty() ? "" : file_ + ": ") + what + " must be a JSON object, got " + shown(object_));
  }
}

std::string JsonFields::where(const std::string& key) const {
  return (file_.empty() ? "" : file_ + ": ") + "'" + prefix_ + key + "'";
}

const nlohmann::json* JsonFields::find(const std::string& key) const {
  const auto it = object_.find(key);
  return it == object_.end() ? nullptr : &*it;
}

void JsonFields::get(const std::string& key, int& out, int64_t min, int64_t max) const {
  // Bounds wider than int would let a value through that int cannot hold.
  min = std::max<int64_t>(min, std::numeric_limits<int>::min());
  max = std::min<int64_t>(max, std::numeric_limits<int>::max());
  if (const auto* v = find(key)) out = static_cast<int>(json_integer(*v, where(key), min, max));
}

void JsonFields::get(const std::string& key, int64_t& out, int64_t min, int64_t max) const {
  if (const auto* v = find(key)) out = json_integer(*v, where(key), min, max);
}

void JsonFields::get(const std::string& key, uint64_t& out) const {
  if (const auto* v = find(key)) out = json_unsigned(*v, where(key));
}

void JsonFields::get(const std::string& key, double& out, double min, double max) const {
  if (const auto* v = find(key)) out = json_number(*v, where(key), min, max);
}

void JsonFields::get(const std::string& key, bool& out) const {
  const auto* v = find(key);
  if (v == nullptr) return;
  if (!v->is_boolean()) throw UsageError(where(key) + " must be true or false, got " + shown(*v));
  out = v->get<bool>();
}

void JsonFields::get(const std::string& key, std::string& out) const {
  const auto* v = find(key);
  if (v == nullptr) return;
  if (!v->is_string()) throw UsageError(where(key) + " must be a string, got " + shown(*v));
  out = v->get<std::string>();
}

void JsonFields::get(const std::string& key, std::vector<std::string>& out, size_t max_items) const {
  const auto* v = find(key);
  if (v == nullptr) return;
  if (!v->is_array() || v->size() > max_items) {
    throw UsageError(where(key) + " must be a list of at most " + std::to_string(max_items) + " strings, got " +
                     shown(*v));
  }
  std::vector<std::string> items;
  for (const auto& item : *v) {
    if (!item.is_string()) throw UsageError(where(key) + " must be a list of strings, got " + shown(*v));
    items.push_back(item.get<std::string>());
  }
  out = std::move(items);
}

void JsonFields::get(const std::string& key, std::map<std::string, double>& out, size_t max_items, double min,
                     double max) const {
  const auto* v = find(key);
  if (v == nullptr) return;
  if (!v->is_object() || v->size() > max_items) {
    throw UsageError(where(key) + " must be an object of at most " + std::to_string(max_items) + " numbers, got " +
                     shown(*v));
  }
  std::map<std::string, double> items;
  for (const auto& [name, number] : v->items()) items[name] = json_number(number, where(key + "." + name), min, max);
  out = std::move(items);
}

void JsonFields::refuse_unknown(const std::set<std::string>& known) const {
  for (const auto& item : object_.items()) {
    if (!known.count(item.key())) {
      throw UsageError((file_.empty() ? "" : file_ + ": ") + "unknown config key '" + prefix_ + item.key() + "'");
    }
  }
}

JsonFields JsonFields::object(const std::string& key) const {
  const auto* v = find(key);
  if (v == nullptr) throw UsageError(where(key) + " is missing");
  return JsonFields(*v, file_, prefix_ + key + ".");
}

}  // namespace ganlite
