#include "launch.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "ganlite/train/distributed.h"
#include "ganlite/util/error.h"

namespace ganlite::cli {

namespace {

constexpr int kMaxProcesses = 256;

// The command line this process was started with, without `--nproc N` / `--nproc=N`.
std::vector<std::string> worker_arguments() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  for (size_t begin = 0; begin < raw.size();) {
    const size_t end = raw.find('\0', begin);
    args.push_back(raw.substr(begin, end - begin));
    begin = end == std::string::npos ? raw.size() : end + 1;
  }
  std::vector<std::string> kept;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--nproc") {
      ++i;  // and its value
    } else if (args[i].rfind("--nproc=", 0) != 0) {
      kept.push_back(args[i]);
    }
  }
  return kept;
}

[[noreturn]] void exec_worker(const std::vector<std::string>& args, int rank, int nproc, int port) {
  const std::string r = std::to_string(rank), n = std::to_string(nproc);
  setenv("RANK", r.c_str(), 1);
  setenv("LOCAL_RANK", r.c_str(), 1);
  setenv("WORLD_SIZE", n.c_str(), 1);
  setenv("LOCAL_WORLD_SIZE", n.c_str(), 1);
  setenv("MASTER_ADDR", "127.0.0.1", 1);
  setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
  if (rank != 0) {  // one summary on stdout (rank 0's); every rank's errors stay on stderr
    const int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) dup2(devnull, STDOUT_FILENO);
  }
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  execv("/proc/self/exe", argv.data());
  std::cerr << "ganlite: error: --nproc: cannot start worker " << rank << "\n";
  _exit(1);
}

volatile sig_atomic_t g_forward_signal = 0;
extern "C" void remember_signal(int signal) { g_forward_signal = signal; }

int exit_code(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

}  // namespace

void add_nproc_flag(CLI::App* cmd, int& nproc) {
  cmd->add_option("--nproc", nproc,
                  "Train data-parallel in N local processes (Gloo on CPU); --batch-size is per process. "
                  "Workers started by torchrun (RANK, WORLD_SIZE, ... set) join their world instead")
      ->check(CLI::Range(1, kMaxProcesses));
}

bool run_as_launcher(int nproc) {
  if (nproc <= 1 || train::world_from_environment()) return false;
  const auto args = worker_arguments();
  const int port = train::free_local_port();
  // SIGINT / SIGTERM are passed on to the workers (a terminal's SIGINT reaches them anyway);
  // the launcher waits for them to save and stop.
  struct sigaction action {};
  action.sa_handler = remember_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  std::vector<pid_t> workers;
  for (int rank = 0; rank < nproc; ++rank) {
    const pid_t pid = fork();
    if (pid < 0) throw Error("--nproc: fork failed for worker " + std::to_string(rank));
    if (pid == 0) exec_worker(args, rank, nproc, port);
    workers.push_back(pid);
  }
  int first_failure = 0, failed_rank = -1, running = nproc;
  bool forwarded = false;
  auto deadline = std::chrono::steady_clock::time_point::max();
  while (running > 0) {
    int status = 0;
    const pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      --running;
      const int code = exit_code(status);
      for (int rank = 0; rank < nproc; ++rank) {
        if (workers[rank] != pid) continue;
        workers[rank] = -1;
        if (code != 0 && failed_rank < 0) {
          failed_rank = rank;
          first_failure = code;
          // The others would wait for it until the collective timeout: stop them now.
          for (pid_t other : workers) {
            if (other > 0) kill(other, SIGTERM);
          }
          deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        }
      }
      continue;
    }
    if (g_forward_signal != 0 && !forwarded) {
      for (pid_t w : workers) {
        if (w > 0) kill(w, g_forward_signal);  // they stop together after their step, rank 0 saving
      }
      forwarded = true;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      for (pid_t w : workers) {
        if (w > 0) kill(w, SIGKILL);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (failed_rank >= 0) {
    const std::string message =
        g_forward_signal != 0
            ? "data-parallel workers stopped by " + std::string(g_forward_signal == SIGINT ? "SIGINT" : "SIGTERM")
            : "data-parallel worker " + std::to_string(failed_rank) + " of " + std::to_string(nproc) +
                  " failed (exit code " + std::to_string(first_failure) + "); the other workers were stopped";
    if (first_failure == 2) throw UsageError(message);
    throw Error(message);
  }
  return true;
}

}  // namespace ganlite::cli
