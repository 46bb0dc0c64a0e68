// `ganlite fid`: Frechet Inception Distance between a folder of generated images and real images
// (a folder, or statistics saved by `ganlite stats` / gan-compression as .npz).
#include <iostream>
#include <nlohmann/json.hpp>

#include "command.h"
#include "ganlite/data/image_io.h"
#include "ganlite/metrics/fid.h"
#include "ganlite/metrics/inception.h"
#include "ganlite/util/device.h"
#include "ganlite/util/error.h"

namespace ganlite::cli {
namespace {

struct FidOptions {
  std::string real;
  std::string fake;
  std::string inception;
  int batch_size = 50;
  CommonOptions common;
};

metrics::FeatureStats folder_stats(metrics::FidInceptionV3& net, const std::string& dir, int batch_size,
                                   const std::string& label) {
  const auto files = data::list_images(dir);
  if (files.size() < 2) throw Error(dir + ": FID needs at least 2 images, found " + std::to_string(files.size()));
  return metrics::compute_statistics(metrics::inception_features_of_files(net, files, batch_size, label));
}

void setup_fid(CLI::App& app) {
  auto* cmd = app.add_subcommand("fid", "Frechet Inception Distance between generated and real images");
  auto o = std::make_shared<FidOptions>();
  cmd->add_option("--real", o->real, "Folder of real images, or their statistics (.npz with mu, sigma)")->required();
  cmd->add_option("--fake", o->fake, "Folder of generated images")->required();
  cmd->add_option("--inception", o->inception, "FID Inception weights (pt_inception-2015-12-05-6726825d.pth)")
      ->required();
  cmd->add_option("--batch-size", o->batch_size, "Images per Inception batch")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
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
    auto net = metrics::load_fid_inception(o->inception, device);
    const auto fake_stats = folder_stats(net, o->fake, o->batch_size, "fake");
    if (!real_is_stats) real_stats = folder_stats(net, o->real, o->batch_size, "real");
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
