// `ganlite import`: converts a generator state dict saved by the public PyTorch code
// (pytorch-CycleGAN-and-pix2pix, gan-compression, CAT) into a ganlite generator file.
#include <torch/torch.h>

#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>

#include "command.h"
#include "ganlite/io/checkpoint.h"
#include "ganlite/io/import_pth.h"
#include "ganlite/nn/arch_config.h"
#include "ganlite/nn/profiler.h"
#include "ganlite/util/device.h"
#include "ganlite/util/error.h"

namespace ganlite::cli {
namespace {

struct ImportCliOptions {
  CommonOptions common;
  std::string checkpoint;
  std::string out;
  std::string arch;
  int ngf = 0, n_blocks = 0, num_downs = 0;
  std::string norm, padding;
  double dropout = 0.0;
  CLI::App* cmd = nullptr;
};

void run_import(const ImportCliOptions& o) {
  apply_common(o.common);
  const torch::Device device = parse_device(o.common.device);
  io::ImportOptions options;
  options.arch = o.arch;
  auto given = [&](const char* name) { return o.cmd->count(name) > 0; };
  if (given("--ngf")) options.ngf = o.ngf;
  if (given("--n-blocks")) options.n_blocks = o.n_blocks;
  if (given("--num-downs")) options.num_downs = o.num_downs;
  if (given("--norm")) options.norm = o.norm;
  if (given("--padding")) options.padding = o.padding;
  if (given("--dropout")) options.dropout = o.dropout;

  io::ImportResult result = io::import_pth_generator(o.checkpoint, options);
  const nn::ArchConfig& config = result.generator->config();

  // A forward pass on the chosen device catches weights that load but do not compute (NaN, Inf).
  const int64_t side = std::max<int64_t>(64, nn::size_multiple(config));
  result.generator->to(device);
  {
    torch::NoGradGuard no_grad;
    const torch::Tensor x = torch::rand({1, config.input_nc, side, side}, torch::TensorOptions().device(device)) * 2 - 1;
    const torch::Tensor y = result.generator->forward(x);
    if (!torch::isfinite(y).all().item<bool>()) {
      throw Error(o.checkpoint + ": the imported generator produces non-finite outputs (NaN or Inf in the weights?)");
    }
  }
  io::save_generator(o.out, *result.generator,
                     {{"imported_from", std::filesystem::path(o.checkpoint).filename().string()},
                      {"imported_layout", result.layout}});

  const int64_t params = nn::count_parameters(*result.generator);
  if (o.common.json) {
    print_json({{"checkpoint", o.checkpoint},
                {"out", o.out},
                {"layout", result.layout},
                {"tensors", result.tensors},
                {"parameters", params},
                {"config", config.to_json()},
                {"notes", result.notes}});
    return;
  }
  if (!o.common.quiet) {
    std::cout << "read " << result.tensors << " tensors from " << o.checkpoint << " (" << result.layout << ")\n";
    for (const auto& note : result.notes) std::cout << "  " << note << "\n";
    std::cout << "wrote " << o.out << ": " << config.arch << " ngf " << config.ngf << ", norm " << config.norm << ", "
              << params << " parameters\n";
  }
}

void setup_import(CLI::App& app) {
  auto o = std::make_shared<ImportCliOptions>();
  auto* cmd = app.add_subcommand(
      "import", "Convert a generator .pth saved by pytorch-CycleGAN-and-pix2pix, gan-compression or CAT into a "
                "ganlite generator file (widths, norm and block count are inferred from the tensors)");
  o->cmd = cmd;
  cmd->add_option("--checkpoint", o->checkpoint, "PyTorch state dict (.pth, torch.save zip format)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--arch", o->arch, "Generator family of the checkpoint")->required()->check(one_of(nn::valid_archs()));
  cmd->add_option("--out", o->out, "Output generator file (.safetensors)")->required();
  cmd->add_option("--ngf", o->ngf, "Nominal base width (default: the stem conv's width)");
  cmd->add_option("--n-blocks", o->n_blocks, "Residual blocks (checked against the file; inception: adds trailing "
                                              "empty blocks)");
  cmd->add_option("--num-downs", o->num_downs, "U-Net down stages (checked against the file)");
  cmd->add_option("--norm", o->norm, "Override the inferred normalisation")->check(one_of(nn::valid_norms()));
  cmd->add_option("--padding", o->padding, "Block padding (reflect and replicate have the same keys; default reflect, "
                                           "zero is inferred)")
      ->check(one_of(nn::valid_paddings()));
  cmd->add_option("--dropout", o->dropout, "Dropout rate stored in the config (no weights; default 0)");
  add_device_options(*cmd, o->common);
  add_output_options(*cmd, o->common);
  cmd->callback([o] { run_import(*o); });
}

}  // namespace

GANLITE_COMMAND("import", 70, setup_import);

}  // namespace ganlite::cli
