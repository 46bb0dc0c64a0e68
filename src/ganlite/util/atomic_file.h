// Files are never left half-written: write to a temporary beside the target, fsync, rename.
// A process killed mid-write leaves its temporary (".NAME.tmp.PID.N") behind, never a torn
// target; remove_stale_temporaries() clears those when the folder is next used.
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
//
// Test hook (for the crash tests only, never set it otherwise): with the environment variable
// GANLITE_TEST_ABORT_IN_WRITE=NAME or NAME@K, the K-th (default: first) write of a file named NAME
// in this process stops half-way: its temporary is cut to half its size and the process sends
// itself SIGKILL before the rename, as a crash in the middle of the write would leave it.
void write_file_atomic(const std::filesystem::path& path,
                       const std::function<void(const std::filesystem::path& tmp_path)>& writer);

// True for the name of a write_file_atomic temporary: ".NAME.tmp.PID.N".
bool is_atomic_write_temporary(const std::string& filename);
// Removes the write_file_atomic temporaries directly in `dir` (not below it), left there by a
// killed process; returns how many. A missing folder holds none. Only for folders no other
// process is writing to at the same time.
size_t remove_stale_temporaries(const std::filesystem::path& dir);

// Reads a whole file; throws Error naming the file when it cannot be read.
std::string read_file(const std::filesystem::path& path);

}  // namespace ganlite
