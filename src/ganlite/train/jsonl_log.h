// Append-only JSON-lines logs (metrics.jsonl, val.jsonl) that survive SIGKILL and resume: a
// resumed run first drops every line past its checkpoint (and any torn last line), so the log
// reads as if the run had never stopped.
#pragma once
#include <nlohmann/json_fwd.hpp>

#include <filesystem>
#include <functional>

namespace ganlite::train {

// Appends one line (flushed). Creates the file if needed.
void append_jsonl(const std::filesystem::path& path, const nlohmann::json& line);
// Keeps the lines for which `keep` is true, dropping unparsable ones; rewrites atomically.
// Returns how many lines were dropped. A missing file is left missing.
size_t filter_jsonl(const std::filesystem::path& path, const std::function<bool(const nlohmann::json&)>& keep);

}  // namespace ganlite::train
