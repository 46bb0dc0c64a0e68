// Append-only JSON-lines logs (metrics.jsonl, val.jsonl) that survive SIGKILL and resume: a
// resumed run first drops every line past its checkpoint (and any torn last line), so the log
// reads as if the run had never stopped.
#pragma once
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>

namespace ganlite::train {

// Appends one line (flushed). Creates the file if needed.
void append_jsonl(const std::filesystem::path& path, const nlohmann::json& line);
// Keeps the lines for which `keep` is true, dropping unparsable ones (a line torn by a crash);
// rewrites the file atomically when a line was dropped or the last one lacks its newline.
// Returns how many lines were dropped. A missing file is left missing. Throws Error naming the
// file and the line when `keep` throws (a line of the wrong shape).
size_t filter_jsonl(const std::filesystem::path& path, const std::function<bool(const nlohmann::json&)>& keep);

// The counter `key` ("step", "epoch") of a log line, for `keep` predicates: -1 when the line is
// not an object or lacks the key; throws Error when the value is not a non-negative integer.
int64_t jsonl_counter(const nlohmann::json& line, const char* key);

}  // namespace ganlite::train
