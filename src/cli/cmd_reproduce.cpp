// `ganlite reproduce`: runs a recipe's stages (recipes/*.json), each as a `ganlite` command line in
// a child process of this same executable (/proc/self/exe), so what --dry-run prints is what runs.
// A stage that finishes records its command line and --json output in OUT/stages/<name>.json
// (written atomically); a later run skips it while its command line is unchanged. A stage that
// fails leaves no folder behind and the error names it.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "command.h"
#include "ganlite/report/recipe.h"
#include "ganlite/util/atomic_file.h"
#include "ganlite/util/error.h"
#include "recipes_dir.h"

namespace ganlite::cli {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct ReproduceOptions {
  std::string recipe;
  std::string recipes_dir;
  report::ReproduceInputs in;
  bool dry_run = false;
  CommonOptions common;
};

CLI::App* subcommand(CLI::App& root, const std::string& name) {
  try {
    return root.get_subcommand(name);
  } catch (const CLI::OptionNotFound&) {
    return nullptr;
  }
}

bool has_flag(CLI::App* cmd, const std::string& flag) { return cmd && cmd->get_option_no_throw(flag) != nullptr; }

// The whole command line of a stage: its recipe arguments, then the flags every run shares
// (--device / --threads where the command takes them, --json for a result the report reads).
std::vector<std::string> stage_argv(CLI::App& root, const report::ResolvedStage& s, const CommonOptions& c) {
  CLI::App* cmd = subcommand(root, s.command);
  std::vector<std::string> argv{"ganlite", s.command};
  argv.insert(argv.end(), s.args.begin(), s.args.end());
  if (has_flag(cmd, "--device") && c.device != "cpu") argv.insert(argv.end(), {"--device", c.device});
  if (has_flag(cmd, "--threads") && c.threads != 0) argv.insert(argv.end(), {"--threads", std::to_string(c.threads)});
  if (has_flag(cmd, "--json")) argv.push_back("--json");
  return argv;
}

// Flags of the stage that its command does not have (a recipe ahead of this build).
std::vector<std::string> unknown_flags(CLI::App& root, const report::ResolvedStage& s) {
  CLI::App* cmd = subcommand(root, s.command);
  if (!cmd) return {"(no command '" + s.command + "')"};
  std::vector<std::string> unknown;
  for (const auto& word : s.args) {
    if (word.rfind("--", 0) == 0 && !has_flag(cmd, word)) unknown.push_back(word);
  }
  return unknown;
}

fs::path marker_path(const std::string& out, const std::string& stage) { return fs::path(out) / "stages" / (stage + ".json"); }

// The finished stage's record when it ran this very command line; nullopt otherwise.
std::optional<json> finished_record(const std::string& out, const std::string& stage, const std::vector<std::string>& argv) {
  std::ifstream in(marker_path(out, stage));
  if (!in) return std::nullopt;
  const json record = json::parse(in, nullptr, false);
  if (record.is_discarded() || !record.contains("argv") || record.at("argv") != json(argv)) return std::nullopt;
  return record;
}

std::string read_tail(const fs::path& file, size_t max_chars) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream buf;
  buf << in.rdbuf();
  const std::string text = buf.str();
  return text.size() > max_chars ? "..." + text.substr(text.size() - max_chars) : text;
}

// Runs argv as a child of this executable, stdout to `out_file`, stderr to `log_file`; its exit status.
int run_child(const std::vector<std::string>& argv, const fs::path& out_file, const fs::path& log_file) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::cout.flush();
  std::cerr.flush();
  const pid_t pid = fork();
  if (pid < 0) throw Error("cannot start a child process for `" + argv[1] + "`");
  if (pid == 0) {
    const int out = open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int log = open(log_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0 || log < 0 || dup2(out, 1) < 0 || dup2(log, 2) < 0) _exit(126);
    execv("/proc/self/exe", args.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw Error("lost the child process of `" + argv[1] + "`");
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

// Runs one stage into a fresh folder; on failure removes the folder and throws naming the stage.
report::StageOutcome run_stage(const report::ResolvedStage& s, const std::vector<std::string>& argv,
                               const ReproduceOptions& o) {
  const fs::path dir = s.dir, logs = fs::path(o.in.out) / "logs";
  fs::remove(marker_path(o.in.out, s.name));
  fs::remove_all(dir);  // what an interrupted earlier attempt left
  fs::create_directories(dir);
  const fs::path out_file = logs / (s.name + ".json"), log_file = logs / (s.name + ".log");
  if (!o.common.json && !o.common.quiet) std::cerr << "[" << s.name << "] " << report::shell_join(argv) << "\n";
  const auto start = std::chrono::steady_clock::now();
  const int code = run_child(argv, out_file, log_file);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (code != 0) {
    fs::remove_all(dir);
    throw Error("stage '" + s.name + "' failed (exit " + std::to_string(code) + "): " + report::shell_join(argv) +
                "\n" + read_tail(log_file, 2000) + "\n(log: " + log_file.string() + "; its folder was removed; run "
                "the same `ganlite reproduce` again to continue from this stage)");
  }
  report::StageOutcome outcome{s, argv, "ran", seconds, read_tail(out_file, std::string::npos)};
  const json record{{"stage", s.name}, {"argv", argv}, {"seconds", seconds},
                    {"result", json::parse(outcome.result_json, nullptr, false).is_discarded()
                                   ? json(nullptr) : json::parse(outcome.result_json)}};
  write_file_atomic(marker_path(o.in.out, s.name), record.dump(2) + "\n");
  return outcome;
}

json dry_run_json(CLI::App& root, const report::Recipe& recipe, const std::vector<report::ResolvedStage>& stages,
                  const ReproduceOptions& o) {
  json list = json::array();
  for (const auto& s : stages) {
    const auto argv = stage_argv(root, s, o.common);
    json j{{"name", s.name}, {"command", s.command}, {"argv", argv}, {"command_line", report::shell_join(argv)},
           {"dir", s.dir}, {"runs", s.skipped.empty()}};
    if (!s.skipped.empty()) j["skipped"] = s.skipped;
    if (s.skipped.empty()) j["finished"] = finished_record(o.in.out, s.name, argv).has_value();
    const auto unknown = unknown_flags(root, s);
    if (!unknown.empty()) j["unknown_flags"] = unknown;
    list.push_back(j);
  }
  std::error_code ec;
  return {{"recipe", recipe.name}, {"file", recipe.file.string()}, {"scale", o.in.scale},
          {"executable", fs::read_symlink("/proc/self/exe", ec).string()}, {"stages", list}};
}

void refuse_unknown_flags(CLI::App& root, const report::Recipe& recipe, const std::vector<report::ResolvedStage>& stages) {
  for (const auto& s : stages) {
    if (!s.skipped.empty()) continue;
    const auto unknown = unknown_flags(root, s);
    if (unknown.empty()) continue;
    std::string flags;
    for (const auto& f : unknown) flags += (flags.empty() ? "" : ", ") + f;
    throw UsageError("recipe '" + recipe.name + "' (" + recipe.file.string() + "), stage '" + s.name + "': `ganlite " +
                     s.command + "` has no " + flags + " in this build; nothing was run");
  }
}

void run_reproduce(CLI::App& root, const ReproduceOptions& o) {
  apply_common(o.common);
  const auto recipes = report::load_recipes(recipes_dir(o.recipes_dir));
  const auto& recipe = report::find_recipe(recipes, o.recipe);
  const auto stages = report::resolve_stages(recipe, o.in);
  if (o.dry_run) {
    const json j = dry_run_json(root, recipe, stages, o);
    if (o.common.json) {
      print_json(j);
      return;
    }
    for (const auto& s : j.at("stages")) {
      std::cout << s.at("name").get<std::string>() << ": "
                << (s.contains("skipped") ? "skipped (" + s.at("skipped").get<std::string>() + ")"
                                          : s.at("command_line").get<std::string>())
                << "\n";
    }
    return;
  }
  refuse_unknown_flags(root, recipe, stages);
  fs::create_directories(fs::path(o.in.out) / "stages");
  fs::create_directories(fs::path(o.in.out) / "logs");
  std::vector<report::StageOutcome> outcomes;
  bool upstream_ran = false;  // a stage that ran again makes every later one run again
  for (const auto& s : stages) {
    const auto argv = stage_argv(root, s, o.common);
    if (!s.skipped.empty()) {
      outcomes.push_back({s, argv, "skipped", 0, ""});
      continue;
    }
    const auto record = upstream_ran ? std::nullopt : finished_record(o.in.out, s.name, argv);
    if (record) {
      const json& result = record->at("result");
      outcomes.push_back({s, argv, "reused", record->value("seconds", 0.0), result.is_null() ? "" : result.dump()});
      if (!o.common.json && !o.common.quiet) std::cerr << "[" << s.name << "] finished earlier, skipped\n";
      continue;
    }
    outcomes.push_back(run_stage(s, argv, o));
    upstream_ran = true;
  }
  const json report = report::reproduce_report_json(recipe, o.in, outcomes);
  write_file_atomic(fs::path(o.in.out) / "report.json", report.dump(2) + "\n");
  write_file_atomic(fs::path(o.in.out) / "report.md", report::reproduce_report_markdown(report));
  if (o.common.json) {
    print_json(report);
  } else {
    std::cout << "wrote " << (fs::path(o.in.out) / "report.md").string() << " and report.json\n";
  }
}

void setup_reproduce(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "reproduce", "Run a published setting end to end from its recipe (teacher, pruning or student, distillation, evaluation); resumable");
  auto o = std::make_shared<ReproduceOptions>();
  cmd->add_option("--recipe", o->recipe, "Recipe name (`ganlite recipes` lists them)")->required();
  cmd->add_option("--data", o->in.data, "Dataset root in the public layout (default at --scale tiny: a synthetic one, made by the recipe's dataset stage)");
  cmd->add_option("--out", o->in.out, "Output folder: one folder per stage, stages/ records, logs/, report.json, report.md")->required();
  cmd->add_option("--teacher", o->in.teacher, "Use this teacher generator (.safetensors, or a .pth of the public code, imported) instead of training one");
  cmd->add_option("--teacher-d", o->in.teacher_d, "The teacher's discriminator, for recipes whose student D starts from it");
  cmd->add_option("--scale", o->in.scale, "full: the paper's setting; tiny: the same stages scaled down (CPU, minutes)")
      ->check(CLI::IsMember({"full", "tiny"}))->capture_default_str();
  cmd->add_option("--inception", o->in.inception, "FID Inception weights (pt_inception-2015-12-05-6726825d.pth); without them FID is not measured");
  cmd->add_option("--segmenter", o->in.segmenter, "TorchScript segmenter for mIoU (cityscapes: DRN-D-105); also picks the best checkpoint where the release does");
  cmd->add_option("--miou-labels", o->in.miou_labels, "Class-id label maps of the test images, for mIoU");
  cmd->add_option("--vgg-weights", o->in.vgg, "torchvision VGG weights for the recipe's perceptual terms: vgg16 (DCD), vgg19 (GauGAN teachers)");
  cmd->add_option("--recipes-dir", o->recipes_dir, "Folder of recipe files (default: $GANLITE_RECIPES_DIR, else the one installed with ganlite)");
  cmd->add_flag("--dry-run", o->dry_run, "Print the resolved stages, each with its exact command line; run nothing");
  add_device_options(*cmd, o->common);
  add_output_options(*cmd, o->common);
  cmd->callback([&app, o] { run_reproduce(app, *o); });
}

}  // namespace

GANLITE_COMMAND("reproduce", 92, setup_reproduce);

}  // namespace ganlite::cli
