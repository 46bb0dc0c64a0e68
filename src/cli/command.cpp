#include "command.h"

#include <c10/util/Exception.h>

#include <cctype>
#include <cmath>
#include <iostream>
#include <new>
#include <nlohmann/json.hpp>

#include "ganlite/nn/generator_family.h"
#include "ganlite/util/device.h"
#include "ganlite/util/error.h"
#include "ganlite/util/progress.h"

namespace ganlite::cli {

std::vector<CommandInfo>& command_registry() {
  static std::vector<CommandInfo> registry;
  return registry;
}

bool register_command(CommandInfo info) {
  command_registry().push_back(std::move(info));
  return true;
}

void add_device_options(CLI::App& cmd, CommonOptions& opts, ThreadsDefault threads_default) {
  opts.threads_default = threads_default;
  cmd.add_option("--device", opts.device, "Device for every tensor: cpu, cuda, cuda:N")->capture_default_str();
  cmd.add_option("--threads", opts.threads,
                 threads_default == ThreadsDefault::idle_cores
                     ? "CPU threads for LibTorch (0 = one per core that no other process keeps busy, checked at start)"
                     : "CPU threads for LibTorch (0 = one per core)")
      ->capture_default_str();
}

void add_output_options(CLI::App& cmd, CommonOptions& opts) {
  cmd.add_flag("--json", opts.json, "Print the result as JSON on stdout (progress bars off)");
  cmd.add_flag("-q,--quiet", opts.quiet, "No progress bars");
}

void add_arch_options(CLI::App& cmd, nn::ArchConfig& arch, const std::string& arch_help) {
  cmd.add_option("--arch", arch.arch, arch_help)
      ->check(one_of(nn::valid_archs()))
      ->capture_default_str();
  cmd.add_option("--ngf", arch.ngf, "Base width")->capture_default_str();
  std::vector<std::string> with_blocks;  // the families whose depth is n_blocks
  for (const auto& family : nn::generator_families()) {
    if (!family.uses_num_downs) with_blocks.push_back(family.name);
  }
  cmd.add_option("--n-blocks", arch.n_blocks, "Residual blocks (" + join_names(with_blocks, ", ") + ")")
      ->capture_default_str();
  cmd.add_option("--num-downs", arch.num_downs, "U-Net down stages (8 = unet_256, 7 = unet_128)")
      ->capture_default_str();
  cmd.add_option("--norm", arch.norm, "Normalisation")->check(one_of(nn::valid_norms()))->capture_default_str();
  cmd.add_option("--padding", arch.padding, "Padding inside the blocks")
      ->check(one_of(nn::valid_paddings()))
      ->capture_default_str();
  cmd.add_option("--input-nc", arch.input_nc, "Input channels")->capture_default_str();
  cmd.add_option("--output-nc", arch.output_nc, "Output channels")->capture_default_str();
  cmd.add_option_function<int>(
      "--label-nc", [&arch](const int& n) { arch.label_nc = n, arch.input_nc = n + 1; },
      "Label-map generators (spade, inception_spade): classes; input channels become label_nc + 1 (one-hot + edge)");
}

void add_inception_options(CLI::App& cmd, InceptionOptions& opts) {
  cmd.add_option("--inception", opts.weights, "FID Inception weights (pt_inception-2015-12-05-6726825d.pth)")
      ->required();
  cmd.add_option("--batch-size", opts.batch_size, "Images per Inception batch")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
}

void apply_common(const CommonOptions& opts) {
  if (opts.threads_default == ThreadsDefault::idle_cores) {
    set_latency_threads(opts.threads);
  } else {
    set_threads(opts.threads);
  }
  if (opts.json || opts.quiet) ProgressBar::set_enabled(false);
}

void print_json(const nlohmann::json& j) { std::cout << j.dump(2) << std::endl; }

CLI::Validator one_of(const std::vector<std::string>& valid) {
  std::string list;
  for (const auto& v : valid) list += (list.empty() ? "" : ", ") + v;
  return CLI::Validator(
      [valid, list](std::string& value) -> std::string {
        for (const auto& v : valid) {
          if (v == value) return "";
        }
        return "'" + value + "' is not valid (valid: " + list + ")";
      },
      "{" + list + "}");
}

std::string user_message(const std::exception& e) {
  std::string text;
  if (const auto* torch_error = dynamic_cast<const c10::Error*>(&e)) {
    text = torch_error->what_without_backtrace();
  } else if (dynamic_cast<const std::bad_alloc*>(&e) != nullptr) {
    text = "out of memory (std::bad_alloc)";
  } else {
    text = e.what();
  }
  const auto backtrace = text.find("Exception raised from");
  if (backtrace != std::string::npos) text.resize(backtrace);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  return text.empty() ? "unexpected failure (an exception without a message)" : text;
}

double parse_si_count(const std::string& text) {
  if (text.empty()) throw UsageError("empty count");
  size_t pos = 0;
  double value = 0;
  try {
    value = std::stod(text, &pos);
  } catch (const std::exception&) {
    throw UsageError("'" + text + "' is not a number (examples: 2.6G, 500M, 1.5e9)");
  }
  std::string suffix = text.substr(pos);
  double scale = 1;
  if (suffix == "k" || suffix == "K") scale = 1e3;
  else if (suffix == "M" || suffix == "m") scale = 1e6;
  else if (suffix == "G" || suffix == "g") scale = 1e9;
  else if (suffix == "T" || suffix == "t") scale = 1e12;
  else if (!suffix.empty()) throw UsageError("'" + text + "': unknown suffix '" + suffix + "' (valid: k, M, G, T)");
  if (!std::isfinite(value) || value < 0) throw UsageError("'" + text + "' must be a non-negative number");
  return value * scale;
}

}  // namespace ganlite::cli
