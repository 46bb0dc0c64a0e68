// `ganlite miou`: segmentation mIoU of generated images with a user-supplied TorchScript
// segmenter (the cityscapes protocol of pix2pix / GAN Compression).
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>

#include "command.h"
#include "ganlite/metrics/miou.h"
#include "ganlite/util/device.h"
#include "ganlite/util/error.h"

namespace ganlite::cli {
namespace {

struct MiouCliOptions {
  std::string segmenter;
  std::string images;
  std::string labels;
  int classes = 19;
  std::vector<double> mean{0, 0, 0};
  std::vector<double> std{1, 1, 1};
  CommonOptions common;
};

std::array<double, 3> three(const std::vector<double>& v, const char* name) {
  if (v.size() != 3) throw UsageError(std::string(name) + " takes 3 values (R,G,B), got " + std::to_string(v.size()));
  return {v[0], v[1], v[2]};
}

void setup_miou(CLI::App& app) {
  auto* cmd = app.add_subcommand("miou", "Segmentation mIoU of generated images (TorchScript segmenter)");
  auto o = std::make_shared<MiouCliOptions>();
  cmd->add_option("--segmenter", o->segmenter, "TorchScript segmenter (torch.jit.save) returning [1, C, H, W] logits")
      ->required();
  cmd->add_option("--images", o->images, "Folder of generated images")->required();
  cmd->add_option("--labels", o->labels, "Folder of single-channel PNG label maps (class ids; 255 = ignore), "
                                         "matched by file name")
      ->required();
  cmd->add_option("--classes", o->classes, "Number of classes")->capture_default_str()->check(CLI::Range(1, 4096));
  cmd->add_option("--mean", o->mean, "Input normalisation mean R,G,B on [0, 1] images")->delimiter(',')->capture_default_str();
  cmd->add_option("--std", o->std, "Input normalisation std R,G,B")->delimiter(',')->capture_default_str();
  add_device_options(*cmd, o->common);
  add_output_options(*cmd, o->common);
  cmd->callback([o] {
    apply_common(o->common);
    const auto device = parse_device(o->common.device);
    metrics::MiouOptions options;
    options.classes = o->classes;
    options.mean = three(o->mean, "--mean");
    options.std = three(o->std, "--std");
    for (double s : options.std) require(s > 0, "--std values must be > 0");
    const auto r = metrics::evaluate_segmentation(o->segmenter, o->images, o->labels, options, device,
                                                  o->common.json || o->common.quiet);
    if (o->common.json) {
      nlohmann::json per_class = nlohmann::json::array();
      for (double v : r.per_class_iou) per_class.push_back(std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v));
      print_json({{"miou", std::isnan(r.miou) ? nlohmann::json(nullptr) : nlohmann::json(r.miou)},
                  {"per_class_iou", per_class},
                  {"count", r.count},
                  {"classes", o->classes}});
    } else {
      std::cout << "mIoU " << r.miou << " % over " << r.count << " images\n";
      for (size_t c = 0; c < r.per_class_iou.size(); ++c) {
        std::cout << "  class " << c << ": ";
        if (std::isnan(r.per_class_iou[c])) std::cout << "absent\n";
        else std::cout << r.per_class_iou[c] << " %\n";
      }
    }
  });
}

}  // namespace

GANLITE_COMMAND("miou", 63, setup_miou);

}  // namespace ganlite::cli
