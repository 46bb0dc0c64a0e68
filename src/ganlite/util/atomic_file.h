// Files are never left half-written: write to a temporary beside the target, fsync, rename.
#pragma once
#include <filesystem>
#include <functional>
#include <string>

namespace ganlite {

// Writes `bytes` to `path` atomically.
void write_file_atomic(const std::filesystem::path& path, const std::string& bytes);

// Calls `writer(tmp_path)` to produce the file at a temporary path, then fsyncs and renames it
// over `path`. The temporary is removed if the writer throws. For writers that need a path
// (OpenCV, zip writers).
void write_file_atomic(const std::filesystem::path& path,
                       const std::function<void(const std::filesystem::path& tmp_path)>& writer);

// Reads a whole file; throws Error naming the file when it cannot be read.
std::string read_file(const std::filesystem::path& path);

}  // namespace ganlite
