#include "test_support.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "ganlite/train/trainer.h"
#include "ganlite/util/atomic_file.h"

namespace ganlite::testing {

namespace fs = std::filesystem;

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  std::random_device rd;
  path_ = fs::temp_directory_path() /
          ("ganlite_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
           std::to_string(rd()));
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

// The ganlite executable re-executes itself once to bound libgomp's spin unless GOMP_SPINCOUNT or
// OMP_WAIT_POLICY is set (src/cli/openmp_wait.cpp): set here, each command a test spawns starts once.
static const bool kBoundedOpenmpSpin = [] { return ::setenv("GOMP_SPINCOUNT", "1000", 0) == 0; }();

CommandResult run_command(const std::string& command_line) {
  CommandResult result;
  std::string full = command_line + " 2>&1";
  FILE* pipe = ::popen(full.c_str(), "r");
  if (!pipe) throw std::runtime_error("popen failed for: " + command_line);
  std::array<char, 4096> buffer{};
  size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.output.append(buffer.data(), n);
  int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

CommandResult run_cli(const std::string& args) {
  return run_command(std::string("'") + GANLITE_CLI_PATH + "' " + args);
}

std::string system_python() {
  for (const char* candidate : {"/usr/bin/python3"}) {
    if (fs::exists(candidate)) return candidate;
  }
  return "";
}

bool python_has_module(const std::string& module) {
  const std::string py = system_python();
  if (py.empty()) return false;
  return run_command(py + " -c 'import " + module + "'").exit_code == 0;
}

std::string read_text_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_text_file(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

int spawn_cli(const std::string& args, const fs::path& log) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const std::string cmd = std::string("exec '") + GANLITE_CLI_PATH + "' " + args + " > '" + log.string() + "' 2>&1";
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

bool wait_for_file(int pid, const fs::path& path, int* status) {
  for (int i = 0; i < 40000; ++i) {
    if (fs::exists(path)) return true;
    if (::waitpid(pid, status, WNOHANG) == pid) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(250));
  }
  return false;
}

std::vector<nlohmann::json> read_jsonl(const fs::path& path) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(read_text_file(path));
  std::string line;
  while (std::getline(in, line)) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

void run_and_sigkill_after_first_checkpoint(const std::string& args, const fs::path& run) {
  int status = 0;
  const pid_t pid = spawn_cli(args, run.string() + ".log");
  ASSERT_TRUE(wait_for_file(pid, train::latest_checkpoint_path(run), &status))
      << "the run ended before its first checkpoint";
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "the run finished before it could be killed";
}

std::vector<int64_t> logged_steps(const fs::path& run) {
  std::vector<int64_t> steps;
  for (const auto& line : read_jsonl(run / "metrics.jsonl")) steps.push_back(line.at("step").get<int64_t>());
  return steps;
}

void expect_same_metrics_log(const fs::path& run_a, const fs::path& run_b) {
  auto a = read_jsonl(run_a / "metrics.jsonl");
  auto b = read_jsonl(run_b / "metrics.jsonl");
  ASSERT_EQ(a.size(), b.size());
  ASSERT_FALSE(a.empty());
  for (size_t i = 0; i < a.size(); ++i) {
    if (i > 0) {
      EXPECT_GT(b[i].at("step").get<int64_t>(), b[i - 1].at("step").get<int64_t>()) << "line " << i;
    }
    a[i].erase("wall_seconds");
    b[i].erase("wall_seconds");
    EXPECT_EQ(a[i], b[i]) << "line " << i;
  }
}

void run_cli_killed_while_writing(const std::string& file_spec, const std::string& args) {
  const auto r = run_command("GANLITE_TEST_ABORT_IN_WRITE='" + file_spec + "' '" + GANLITE_CLI_PATH + "' " + args);
  ASSERT_EQ(r.exit_code, 128 + SIGKILL) << "not killed while writing " << file_spec << ":\n" << r.output;
}

std::vector<fs::path> temporaries_under(const fs::path& dir) {
  std::vector<fs::path> found;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (is_atomic_write_temporary(entry.path().filename().string())) found.push_back(entry.path());
  }
  return found;
}

}  // namespace ganlite::testing
