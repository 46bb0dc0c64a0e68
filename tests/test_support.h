// Helpers shared by the tests: temporary folders, running the CLI, optional tools.
#pragma once
#include <ATen/core/Tensor.h>
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "ganlite/nn/arch_config.h"

namespace ganlite::testing {

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Occurrences of `needle` in `text`, overlapping ones included.
inline int count_of(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++n;
  return n;
}

inline std::vector<int64_t> shape_of(const at::Tensor& t) { return t.sizes().vec(); }

inline nn::ArchConfig arch_config(const std::string& arch, int ngf, const std::string& norm, int n_blocks = 9) {
  nn::ArchConfig c;
  c.arch = arch;
  c.ngf = ngf;
  c.norm = norm;
  c.n_blocks = n_blocks;
  return c;
}

// A fresh folder under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs a shell command line, capturing its output.
CommandResult run_command(const std::string& command_line);
// Runs the built `ganlite` executable with the given arguments (already shell-quoted).
CommandResult run_cli(const std::string& args);

// Debian's python3 (system interpreter, where python3-numpy / python3-torch live), or "".
std::string system_python();
// True when `system_python()` can import the module.
bool python_has_module(const std::string& module);

// Starts `ganlite <args>` in the background with its output in `log`; returns its pid.
int spawn_cli(const std::string& args, const std::filesystem::path& log);
// Polls for up to ~10 s until `path` exists; false when the process `pid` ended first (its wait
// status then in *status) or time ran out.
bool wait_for_file(int pid, const std::filesystem::path& path, int* status);
// The JSON objects of a .jsonl file, one per line.
std::vector<nlohmann::json> read_jsonl(const std::filesystem::path& path);

// Starts `ganlite <args>` writing into the run folder `run` and SIGKILLs it once its first
// checkpoint exists (gtest failures when it ends before that or finishes before the kill; call
// under ASSERT_NO_FATAL_FAILURE).
void run_and_sigkill_after_first_checkpoint(const std::string& args, const std::filesystem::path& run);
// Two runs' metrics.jsonl read as the same log, line by line, wall times aside, each with its
// steps strictly increasing (each logged step once; gtest failures otherwise).
void expect_same_metrics_log(const std::filesystem::path& run_a, const std::filesystem::path& run_b);
// The "step" of every line of RUN/metrics.jsonl, in order.
std::vector<int64_t> logged_steps(const std::filesystem::path& run);

// Runs `ganlite <args>` with GANLITE_TEST_ABORT_IN_WRITE=`file_spec` (NAME or NAME@K, see
// util/atomic_file.h): it SIGKILLs itself in the middle of writing that file. A gtest failure
// unless it died so (call under ASSERT_NO_FATAL_FAILURE).
void run_cli_killed_while_writing(const std::string& file_spec, const std::string& args);
// The write_file_atomic temporaries anywhere under `dir`.
std::vector<std::filesystem::path> temporaries_under(const std::filesystem::path& dir);

std::string read_text_file(const std::filesystem::path& path);
void write_text_file(const std::filesystem::path& path, const std::string& text);

}  // namespace ganlite::testing
