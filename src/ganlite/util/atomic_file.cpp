#include "ganlite/util/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <vector>

#include "ganlite/util/error.h"

namespace ganlite {

namespace fs = std::filesystem;

namespace {

constexpr const char* kTemporaryTag = ".tmp";

fs::path temporary_beside(const fs::path& path) {
  static std::atomic<unsigned> counter{0};
  return path.parent_path() / ("." + path.filename().string() + kTemporaryTag + "." + std::to_string(::getpid()) +
                               "." + std::to_string(counter++));
}

void fsync_path(const fs::path& path, bool directory) {
  int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) return;  // best effort for directories on filesystems that refuse it
  ::fsync(fd);
  ::close(fd);
}

// GANLITE_TEST_ABORT_IN_WRITE=NAME[@K], read once (see atomic_file.h).
struct AbortInWrite {
  std::string name;
  long count = 1;
};

const std::optional<AbortInWrite>& abort_in_write() {
  static const std::optional<AbortInWrite> spec = []() -> std::optional<AbortInWrite> {
    const char* env = std::getenv("GANLITE_TEST_ABORT_IN_WRITE");
    if (env == nullptr || *env == '\0') return std::nullopt;
    AbortInWrite a;
    a.name = env;
    const auto at = a.name.rfind('@');
    if (at != std::string::npos) {
      a.count = std::max(1L, std::strtol(a.name.c_str() + at + 1, nullptr, 10));
      a.name.resize(at);
    }
    return a;
  }();
  return spec;
}

// The crash tests' deterministic "killed while writing": a torn temporary, no rename.
void crash_here_if_asked(const fs::path& path, const fs::path& tmp) {
  const auto& spec = abort_in_write();
  if (!spec || path.filename() != spec->name) return;
  static std::atomic<long> seen{0};
  if (++seen != spec->count) return;
  std::error_code ec;
  const auto size = fs::file_size(tmp, ec);
  if (!ec) fs::resize_file(tmp, size / 2, ec);
  ::kill(::getpid(), SIGKILL);
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
}

}  // namespace

void write_file_atomic(const fs::path& path, const std::function<void(const fs::path&)>& writer) {
  fs::path parent = path.parent_path().empty() ? fs::path(".") : path.parent_path();
  std::error_code ec;
  fs::create_directories(parent, ec);
  const fs::path tmp = temporary_beside(path.parent_path().empty() ? fs::path(".") / path : path);
  try {
    writer(tmp);
    if (!fs::exists(tmp)) throw Error("writing " + path.string() + ": nothing was written");
    crash_here_if_asked(path, tmp);
    fsync_path(tmp, false);
    fs::rename(tmp, path);
    fsync_path(parent, true);
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
}

void write_file_atomic(const fs::path& path, const std::string& bytes) {
  write_file_atomic(path, [&](const fs::path& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error("cannot open " + tmp.string() + " for writing: " + std::strerror(errno));
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) throw Error("writing " + path.string() + " failed: " + std::strerror(errno));
  });
}

bool is_atomic_write_temporary(const std::string& filename) {
  // "." NAME ".tmp." PID "." N, NAME not empty.
  if (filename.size() < 2 || filename[0] != '.') return false;
  const auto last_dot = filename.rfind('.');
  if (last_dot == std::string::npos || last_dot == 0 || !all_digits(filename.substr(last_dot + 1))) return false;
  const auto pid_dot = filename.rfind('.', last_dot - 1);
  const std::string tag = kTemporaryTag;
  if (pid_dot == std::string::npos || pid_dot < tag.size() + 2) return false;
  if (!all_digits(filename.substr(pid_dot + 1, last_dot - pid_dot - 1))) return false;
  return filename.compare(pid_dot - tag.size(), tag.size(), tag) == 0;
}

size_t remove_stale_temporaries(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return 0;
  std::vector<fs::path> stale;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_regular_file(ec) && is_atomic_write_temporary(entry.path().filename().string())) {
      stale.push_back(entry.path());
    }
  }
  size_t removed = 0;
  for (const auto& path : stale) {
    if (fs::remove(path, ec)) ++removed;
    if (ec) throw Error("cannot remove the stale temporary '" + path.string() + "': " + ec.message());
  }
  return removed;
}

std::string read_file(const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw Error(path.string() + ": is a directory, expected a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path.string() + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace ganlite
