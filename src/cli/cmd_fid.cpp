// `ganlite fid`: Frechet Inception Distance between a folder of generated images and real images
// (a folder, or statistics saved by `ganlite stats` / gan-compression as .npz).
#include <iostream>
#include <nlohmann/json.hpp>

#include "command.h"
#include "ganlite/metrics/fid.h"
#include "ganlite/metrics/inception.h"
#include "ganlite/util/device.h"

namespace ganlite::cli {
namespace {

struct FidOptions {
  std::string real;
  std::string fake;
  InceptionOptions inception;
  CommonOptions common;
};

void setup_fid(CLI::App& app) {
  auto* cmd = app.add_subcommand("fid", "Frechet Inception Distance between generated and real images");
  auto o = std::make_shared<FidOptions>();
  cmd->add_option("--real", o->real, "Folder of real images, or their statistics (.npz with mu, sigma)")->required();
  cmd->add_option("--fake", o->fake, "Folder of generated images")->required();
  add_inception_options(*cmd, o->inception);
  add_device_options(*cmd, o->common);
  add_output_options(*cmd, o->common);
  cmd->callback([o] {
    apply_common(o->common);
    const auto device = parse_device(o->common.device);
    const std::filesystem::path real(o->real);
    const bool real_is_stats = real.extension() == ".npz";
    // Read the small inputs first so that a bad path fails before minutes of Inception.
    metrics::FeatureStats real_stats;
    if (real_is_stats) real_stats = metrics::load_statistics(real);
    auto net = metrics::load_fid_inception(o->inception.weights, device);
    auto folder_stats = [&](const std::string& dir, const std::string& label) {
      return metrics::compute_statistics(
          metrics::inception_features_of_folder(net, dir, o->inception.batch_size, "FID", label));
    };
    const auto fake_stats = folder_stats(o->fake, "fake");
    if (!real_is_stats) real_stats = folder_stats(o->real, "real");
    const double fid = metrics::frechet_distance(real_stats, fake_stats);
    if (o->common.json) {
      print_json({{"fid", fid}, {"real_count", real_stats.count}, {"fake_count", fake_stats.count}});
    } else {
      std::cout << "FID " << fid << " (real: "
                << (real_is_stats ? "statistics " + o->real : std::to_string(real_stats.count) + " images")
                << ", fake: " << fake_stats.count << " images)\n";
    }
  });
}

}  // namespace

GANLITE_COMMAND("fid", 61, setup_fid);

}  // namespace ganlite::cli
