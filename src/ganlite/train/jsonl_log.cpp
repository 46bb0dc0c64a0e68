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
  std::istringstream in(read_file(path));
  std::string line;
  std::string kept;
  size_t dropped = 0;
  while (std::getline(in, line)) {
    const auto parsed = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded() || !keep(parsed)) {
      ++dropped;
      continue;
    }
    kept += line + '\n';
  }
  if (dropped > 0) write_file_atomic(path, kept);
  return dropped;
}

}  // namespace ganlite::train
