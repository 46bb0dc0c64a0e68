// `ganlite kid`: Kernel Inception Distance between two folders of images.
#include <iostream>
#include <nlohmann/json.hpp>

#include "command.h"
#include "ganlite/metrics/fid.h"
#include "ganlite/metrics/inception.h"
#include "ganlite/util/device.h"

namespace ganlite::cli {
namespace {

struct KidOptions {
  std::string real;
  std::string fake;
  InceptionOptions inception;
  int subsets = 100;
  int subset_size = 1000;
  uint64_t seed = 0;
  CommonOptions common;
};

void setup_kid(CLI::App& app) {
  auto* cmd = app.add_subcommand("kid", "Kernel Inception Distance between generated and real images");
  auto o = std::make_shared<KidOptions>();
  cmd->add_option("--real", o->real, "Folder of real images")->required();
  cmd->add_option("--fake", o->fake, "Folder of generated images")->required();
  add_inception_options(*cmd, o->inception);
  cmd->add_option("--subsets", o->subsets, "Random subsets averaged")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--subset-size", o->subset_size,
                  "Images per subset (capped by the smaller set; CAT's protocol: --subsets 100 --subset-size 100)")
      ->capture_default_str()
      ->check(CLI::Range(2, 1000000));
  cmd->add_option("--seed", o->seed, "Seed of the subset sampling")->capture_default_str();
  add_device_options(*cmd, o->common);
  add_output_options(*cmd, o->common);
  cmd->callback([o] {
    apply_common(o->common);
    const auto device = parse_device(o->common.device);
    auto net = metrics::load_fid_inception(o->inception.weights, device);
    const auto fake = metrics::inception_features_of_folder(net, o->fake, o->inception.batch_size, "KID", "fake");
    const auto real = metrics::inception_features_of_folder(net, o->real, o->inception.batch_size, "KID", "real");
    const auto kid = metrics::kernel_inception_distance(real.to(device), fake.to(device), o->subsets, o->subset_size, o->seed);
    if (o->common.json) {
      print_json({{"kid_mean", kid.mean},
                  {"kid_std", kid.std},
                  {"real_count", real.size(0)},
                  {"fake_count", fake.size(0)},
                  {"subsets", kid.subsets},
                  {"subset_size", kid.subset_size}});
    } else {
      std::cout << "KID " << kid.mean << " +- " << kid.std << " (" << kid.subsets << " subsets of " << kid.subset_size
                << "; real: " << real.size(0) << ", fake: " << fake.size(0) << " images)\n";
    }
  });
}

}  // namespace

GANLITE_COMMAND("kid", 62, setup_kid);

}  // namespace ganlite::cli
