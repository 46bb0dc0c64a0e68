// Subcommand registry: each src/cli/cmd_*.cpp registers itself with GANLITE_COMMAND, so adding
// a command touches no other file.
#pragma once
#include <CLI/CLI.hpp>
#include <nlohmann/json_fwd.hpp>

#include <exception>
#include <functional>
#include <string>
#include <vector>

#include "ganlite/nn/arch_config.h"

namespace ganlite::cli {

using CommandSetup = std::function<void(CLI::App& app)>;

struct CommandInfo {
  std::string name;
  int order;  // position in `ganlite --help`
  CommandSetup setup;
};

std::vector<CommandInfo>& command_registry();
bool register_command(CommandInfo info);

// Options every command shares, with the same names and meaning everywhere.
// What --threads 0 means: one thread per CPU this process may use, or (latency-bound commands:
// bench, serve) one per core no other process keeps busy at start (util::idle_cpus).
enum class ThreadsDefault { per_cpu, idle_cores };

struct CommonOptions {
  std::string device = "cpu";
  int threads = 0;
  ThreadsDefault threads_default = ThreadsDefault::per_cpu;
  bool json = false;
  bool quiet = false;
};
// Adds --device and --threads; call apply_common() in the callback.
void add_device_options(CLI::App& cmd, CommonOptions& opts, ThreadsDefault threads_default = ThreadsDefault::per_cpu);
// Adds --json (machine-readable result on stdout; progress bars go quiet) and --quiet.
void add_output_options(CLI::App& cmd, CommonOptions& opts);
void apply_common(const CommonOptions& opts);

// A generator architecture given by flags (--arch --ngf --n-blocks --num-downs --norm --padding
// --input-nc --output-nc), as profile and bench take it.
void add_arch_options(CLI::App& cmd, nn::ArchConfig& arch, const std::string& arch_help);

// The FID Inception network's flags, shared by stats, fid and kid.
struct InceptionOptions {
  std::string weights;  // pt_inception-2015-12-05-6726825d.pth
  int batch_size = 50;
};
// Adds --inception (required) and --batch-size.
void add_inception_options(CLI::App& cmd, InceptionOptions& opts);

// Prints `j` as one JSON document on stdout.
void print_json(const nlohmann::json& j);

// CLI11 validator for a choice list that names the valid values in its error.
CLI::Validator one_of(const std::vector<std::string>& valid);

// An exception's message for the user: never LibTorch's backtrace (c10::Error::what() appends
// "Exception raised from ... frame #0 ..."; a message that wrapped one is cut there too), never
// empty.
std::string user_message(const std::exception& e);

// Parses "2.6G", "500M", "1.5e9", "12k" into a count.
double parse_si_count(const std::string& text);

}  // namespace ganlite::cli

#define GANLITE_CONCAT_INNER(a, b) a##b
#define GANLITE_CONCAT(a, b) GANLITE_CONCAT_INNER(a, b)
#define GANLITE_COMMAND(name, order, setup_fn)                  \
  static const bool GANLITE_CONCAT(ganlite_command_registered_, __LINE__) = \
      ::ganlite::cli::register_command({name, order, setup_fn})
