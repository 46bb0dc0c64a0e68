// `ganlite stats`: FID statistics (mu, sigma of Inception pool3 features) of a folder of images,
// saved as an .npz that numpy, pytorch-fid and gan-compression read.
#include <iostream>
#include <nlohmann/json.hpp>

#include "command.h"
#include "ganlite/metrics/fid.h"
#include "ganlite/metrics/inception.h"
#include "ganlite/util/device.h"

namespace ganlite::cli {
namespace {

struct StatsOptions {
  std::vector<std::string> images;
  InceptionOptions inception;
  std::string out;
  CommonOptions common;
};

void setup_stats(CLI::App& app) {
  auto* cmd = app.add_subcommand("stats", "Compute FID statistics (mu, sigma of Inception pool3 features) of a folder");
  auto o = std::make_shared<StatsOptions>();
  cmd->add_option("--images", o->images,
                  "Folder(s) of images, pooled (CycleGAN's protocol: the target domain's train and test folders)")
      ->required();
  add_inception_options(*cmd, o->inception);
  cmd->add_option("--out", o->out, "Output .npz with float64 arrays mu and sigma")->required();
  add_device_options(*cmd, o->common);
  add_output_options(*cmd, o->common);
  cmd->callback([o] {
    apply_common(o->common);
    const auto device = parse_device(o->common.device);
    auto net = metrics::load_fid_inception(o->inception.weights, device);
    std::vector<torch::Tensor> parts;
    for (const auto& folder : o->images) {
      parts.push_back(metrics::inception_features_of_folder(net, folder, o->inception.batch_size, "FID", "inception"));
    }
    const auto features = torch::cat(parts, 0);
    const auto stats = metrics::compute_statistics(features);
    metrics::save_statistics(o->out, stats);
    if (o->common.json) {
      print_json({{"out", o->out}, {"count", stats.count}, {"dims", stats.mu.size(0)}});
    } else {
      std::cout << "wrote " << o->out << " (" << stats.count << " images, " << stats.mu.size(0) << "-d)\n";
    }
  });
}

}  // namespace

GANLITE_COMMAND("stats", 60, setup_stats);

}  // namespace ganlite::cli
