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
  std::string input_size;  // "S" (square) or "HxW"; empty: the family's default (256, GauGAN 256x512)
  bool per_layer = false;
};

// "256" -> 256x256, "256x512" -> 256x512.
std::pair<int64_t, int64_t> parse_input_size(const std::string& text) {
  const auto x = text.find('x');
  try {
    size_t used = 0;
    const int64_t h = std::stoll(text.substr(0, x), &used);
    if (used != (x == std::string::npos ? text.size() : x)) throw std::invalid_argument(text);
    if (x == std::string::npos) return {h, h};
    const std::string rest = text.substr(x + 1);
    const int64_t w = std::stoll(rest, &used);
    if (used != rest.size()) throw std::invalid_argument(text);
    return {h, w};
  } catch (const std::exception&) {
    throw UsageError("--input-size must be a side (256) or HxW (256x512), got '" + text + "'");
  }
}

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
  const auto [height, width] = !opts.input_size.empty()       ? parse_input_size(opts.input_size)
                               : family.default_profile_size ? family.default_profile_size(arch)
                                                             : std::pair<int64_t, int64_t>{256, 256};
  for (const int64_t side : {height, width}) {
    if (family.check_profile_size) family.check_profile_size(arch, side);
    require(side >= 8, "--input-size must be at least 8, got " + std::to_string(side));
  }
  if (!model) {
    model = nn::make_generator(arch);
    model->to(device);
  }
  const nn::ModelProfile profile = nn::profile_generator(*model, height, width);

  if (opts.common.json) {
    nlohmann::json j = profile.to_json(opts.per_layer);
    j["arch"] = arch.arch;
    if (height == width) {
      j["input_size"] = height;
    } else {
      j["input_size"] = {height, width};
    }
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
  std::cout << (opts.model.empty() ? "" : opts.model + ": ") << arch.arch << " ngf " << arch.ngf << " at " << height << "x" << width << "\n"
            << "MACs   " << nn::format_macs(profile.macs) << " (" << profile.macs << ")\n"
            << "params " << nn::format_params(profile.params) << " (" << profile.params << ")\n";
}

void setup_profile(CLI::App& app) {
  auto opts = std::make_shared<ProfileOptions>();
  auto* cmd = app.add_subcommand("profile", "Count a generator's MACs and parameters (batch 1, papers' convention)");
  add_arch_options(*cmd, opts->arch, "Generator architecture");
  cmd->add_option("--model", opts->model, "A generator file (.safetensors); its architecture and widths are used")
      ->check(CLI::ExistingFile);
  cmd->add_option("--input-size", opts->input_size,
                  "Input side in pixels, or HxW (default 256; spade / inception_spade: the config's training "
                  "resolution, 256x512)");
  cmd->add_flag("--per-layer", opts->per_layer, "List every layer (name, type, output shape, MACs, params)");
  add_device_options(*cmd, opts->common);
  add_output_options(*cmd, opts->common);
  cmd->callback([opts] { run_profile(*opts); });
}

}  // namespace

GANLITE_COMMAND("profile", 20, setup_profile);

}  // namespace ganlite::cli
