#include "ganlite/train/jsonl_log.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "ganlite/util/atomic_file.h"
#include "ganlite/util/error.h"

namespace ganlite::train {

void append_jsonl(const std::filesystem::path& path, const nlohmann::json& line) {
  std::ofstream out(path, std::ios::app | std::ios::binary);
  if (!out) throw Error("cannot open log '" + path.string() + "' for appending");
  out << line.dump() << '\n';
  out.flush();
  if (!out) throw Error("cannot write to log '" + path.string() + "'");
}

size_t filter_jsonl(const std::filesystem::path& path, const std::function<bool(const nlohmann::json&)>& keep) {
  if (!std::filesystem::exists(path)) return 0;
  const std::string text = read_file(path);
  std::istringstream in(text);
  std::string line;
  std::string kept;
  size_t dropped = 0;
  size_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    const auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    bool keep_line = false;
    try {
      keep_line = !parsed.is_discarded() && keep(parsed);
    } catch (const std::exception& e) {
      throw Error("log '" + path.string() + "' line " + std::to_string(line_number) + ": " + e.what());
    }
    if (!keep_line) {
      ++dropped;
      continue;
    }
    kept += line + '\n';
  }
  // A last line without its newline would be glued to the next appended one.
  const bool unterminated = !text.empty() && text.back() != '\n';
  if (dropped > 0 || unterminated) write_file_atomic(path, kept);
  return dropped;
}

int64_t jsonl_counter(const nlohmann::json& line, const char* key) {
  if (!line.is_object() || !line.contains(key)) return -1;
  const auto& value = line.at(key);
  if (!value.is_number_integer() || value.get<int64_t>() < 0) {
    throw Error(std::string("'") + key + "' is not a non-negative integer: " + value.dump());
  }
  return value.get<int64_t>();
}

}  // namespace ganlite::train
