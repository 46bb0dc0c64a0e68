// `ganlite profile`: MACs and parameters of a generator by the papers' counting rule
// (methods.md section 5), optionally per layer.
#include <torch/torch.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "command.h"
#include "ganlite/io/checkpoint.h"
#include "ganlite/nn/arch_config.h"
#include "ganlite/nn/generator_family.h"
#include "ganlite/nn/profiler.h"
#include "ganlite/util/device.h"
#include "ganlite/util/error.h"

namespace ganlite::cli {
namespace {

struct ProfileOptions {
  CommonOptions common;
  nn::ArchConfig arch;
  std::string model;  // a generator file; its architecture replaces --arch and friends
  int input_size = 256;
  bool per_layer = false;
};

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "x" : "") + std::to_string(shape[i]);
  return s;
}

void run_profile(const ProfileOptions& opts) {
  apply_common(opts.common);
  const torch::Device device = parse_device(opts.common.device);
  nn::ArchConfig arch = opts.arch;
  nn::Generator model;
  if (!opts.model.empty()) {
    model = io::load_generator(opts.model, device);
    arch = model->config();
  }
  arch.validate();
  const auto& family = nn::generator_family(arch.arch);
  if (family.check_profile_size) family.check_profile_size(arch, opts.input_size);
  require(opts.input_size >= 8, "--input-size must be at least 8, got " + std::to_string(opts.input_size));
  const nn::ModelProfile profile =
      model ? nn::profile_generator(*model, opts.input_size) : nn::profile_generator(arch, opts.input_size, device);

  if (opts.common.json) {
    nlohmann::json j = profile.to_json(opts.per_layer);
    j["arch"] = arch.arch;
    j["input_size"] = opts.input_size;
    j["config"] = arch.to_json();
    if (!opts.model.empty()) j["model"] = opts.model;
    print_json(j);
    return;
  }
  if (opts.per_layer) {
    std::printf("%-40s %-18s %-18s %14s %10s\n", "layer", "type", "output", "MACs", "params");
    for (const auto& l : profile.layers) {
      std::printf("%-40s %-18s %-18s %14lld %10lld\n", l.name.c_str(), l.type.c_str(), shape_string(l.output_shape).c_str(),
                  static_cast<long long>(l.macs), static_cast<long long>(l.params));
    }
    std::printf("\n");
  }
  std::cout << (opts.model.empty() ? "" : opts.model + ": ") << arch.arch << " ngf " << arch.ngf << " at " << opts.input_size << "x" << opts.input_size << "\n"
            << "MACs   " << nn::format_macs(profile.macs) << " (" << profile.macs << ")\n"
            << "params " << nn::format_params(profile.params) << " (" << profile.params << ")\n";
}

void setup_profile(CLI::App& app) {
  auto opts = std::make_shared<ProfileOptions>();
  auto* cmd = app.add_subcommand("profile", "Count a generator's MACs and parameters (batch 1, papers' convention)");
  add_arch_options(*cmd, opts->arch, "Generator architecture");
  cmd->add_option("--model", opts->model, "A generator file (.safetensors); its architecture and widths are used")
      ->check(CLI::ExistingFile);
  cmd->add_option("--input-size", opts->input_size, "Square input side in pixels")->capture_default_str();
  cmd->add_flag("--per-layer", opts->per_layer, "List every layer (name, type, output shape, MACs, params)");
  add_device_options(*cmd, opts->common);
  add_output_options(*cmd, opts->common);
  cmd->callback([opts] { run_profile(*opts); });
}

}  // namespace

GANLITE_COMMAND("profile", 20, setup_profile);

}  // namespace ganlite::cli
