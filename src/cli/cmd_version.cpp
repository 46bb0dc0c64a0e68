// `ganlite version`: versions, threads and devices, so bug reports carry the facts.
#include <torch/torch.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "command.h"
#include "ganlite/torch_compat.h"
#include "ganlite/util/device.h"

namespace ganlite::cli {
namespace {

void setup_version(CLI::App& app) {
  auto* cmd = app.add_subcommand("version", "Print ganlite and LibTorch versions, threads and devices");
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "Print as JSON");
  cmd->callback([json] {
    const nlohmann::json info{{"ganlite", GANLITE_VERSION},
                              {"libtorch", compat::torch_version()},
                              {"threads", torch::get_num_threads()},
                              {"mkldnn", torch::hasMKLDNN()},
                              {"devices", available_devices()}};
    if (*json) {
      print_json(info);
      return;
    }
    std::cout << "ganlite " << GANLITE_VERSION << "\n"
              << "LibTorch " << compat::torch_version() << "\n"
              << "threads " << torch::get_num_threads() << "\n"
              << "oneDNN " << (torch::hasMKLDNN() ? "yes" : "no") << "\n"
              << "devices";
    for (const auto& d : available_devices()) std::cout << " " << d;
    std::cout << "\n";
  });
}

}  // namespace

GANLITE_COMMAND("version", 100, setup_version);

}  // namespace ganlite::cli
