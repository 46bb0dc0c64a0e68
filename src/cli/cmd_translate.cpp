// `ganlite translate`: run a generator file on an image or a folder of images of any size.
#include <torch/torch.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <iostream>
#include <nlohmann/json.hpp>

#include "command.h"
#include "ganlite/data/image_io.h"
#include "ganlite/data/label_maps.h"
#include "ganlite/io/checkpoint.h"
#include "ganlite/io/onnx_runner.h"
#include "ganlite/nn/inference.h"
#include "ganlite/nn/translate.h"
#include "ganlite/util/device.h"
#include "ganlite/util/error.h"
#include "ganlite/util/progress.h"

namespace ganlite::cli {
namespace {

namespace fs = std::filesystem;

struct TranslateOptions {
  CommonOptions common;
  std::string model;
  std::string input;
  std::string out;
  int batch_size = 1;
  std::string precision = "fp32";
  int pad_multiple = 4;  // .onnx models: inputs are padded to this multiple (unet_256: 256)
  std::string paired_half;  // "A" / "B": inputs are A|B pairs side by side; translate that half
  std::string instances;    // label-map generators: instance map(s) for the label maps (file or folder)
};

// A label-map generator's classes (data/label_maps.h): its label_nc, else input_nc - 1 for a
// generator trained on label maps without the field; 0 for an image-to-image generator.
int label_classes(const nn::ArchConfig& c) {
  if (c.label_nc > 0) return c.label_nc;
  return c.input_nc != 3 && c.input_nc > 1 ? c.input_nc - 1 : 0;
}

// The instance map of label map `label`: --instances itself for one input, else the file of the
// same name in the --instances folder; none without --instances.
fs::path instance_map_for(const TranslateOptions& o, const fs::path& label) {
  if (o.instances.empty()) return {};
  if (!fs::is_directory(o.instances)) return o.instances;
  const fs::path p = fs::path(o.instances) / label.filename();
  if (!fs::exists(p)) throw Error("--instances: no instance map '" + p.string() + "' for label map '" + label.string() + "'");
  return p;
}

void run_translate(const TranslateOptions& o) {
  apply_common(o.common);
  require(o.batch_size >= 1, "--batch-size must be >= 1, got " + std::to_string(o.batch_size));
  require(o.pad_multiple >= 1, "--pad-multiple must be >= 1, got " + std::to_string(o.pad_multiple));
  const torch::Device device = parse_device(o.common.device);
  std::vector<fs::path> inputs;
  if (fs::is_directory(o.input)) {
    inputs = data::list_images(o.input);
    if (inputs.empty()) throw Error("no images in '" + o.input + "'");
  } else if (fs::exists(o.input)) {
    inputs.push_back(o.input);
  } else {
    throw Error("input '" + o.input + "' does not exist");
  }
  // A ganlite generator file, or an exported .onnx run through OpenCV DNN (to check an export).
  std::function<torch::Tensor(const torch::Tensor&)> forward;
  int64_t multiple = 4;
  nn::Generator generator;
  std::unique_ptr<io::OnnxRunner> onnx;
  std::unique_ptr<nn::InferenceRunner> runner;
  if (io::is_onnx_path(o.model)) {
    onnx = std::make_unique<io::OnnxRunner>(o.model);
    forward = [&](const torch::Tensor& x) { return onnx->run(x); };
    multiple = o.pad_multiple;
  } else {
    generator = io::load_generator(o.model, device);
    // The fast inference path (folded norms, channels-last, oneDNN); same outputs to ~1e-5.
    runner = std::make_unique<nn::InferenceRunner>(*generator, nn::InferenceOptions{nn::parse_precision(o.precision), true});
    forward = [&](const torch::Tensor& x) { return runner->forward(x); };
    multiple = nn::size_multiple(generator->config());
  }
  const int label_nc = generator ? label_classes(generator->config()) : 0;
  require(o.instances.empty() || label_nc > 0, "--instances is for label-map generators (--task spade)");
  fs::create_directories(o.out);

  ProgressBar bar(static_cast<int64_t>(inputs.size()), "translate");
  std::vector<std::string> written;
  // Consecutive images of one size share a batch; a size change flushes it.
  std::vector<torch::Tensor> pending;
  std::vector<fs::path> pending_paths;
  auto flush = [&] {
    if (pending.empty()) return;
    const auto outputs = nn::translate_padded(forward, torch::stack(pending).to(device), multiple).cpu();
    for (size_t i = 0; i < pending_paths.size(); ++i) {
      fs::path target = fs::path(o.out) / pending_paths[i].filename();
      target.replace_extension(".png");
      data::write_image_rgb(target, data::tensor_to_image(outputs[static_cast<int64_t>(i)]));
      written.push_back(target.string());
    }
    bar.advance(static_cast<int64_t>(pending.size()));
    pending.clear();
    pending_paths.clear();
  };
  for (const auto& path : inputs) {
    // Label-map generators read class ids (and instance ids) as their one-hot + edge input.
    auto image = label_nc > 0 ? data::read_semantic_input(path, instance_map_for(o, path), label_nc)[0]
                              : data::image_to_tensor(data::read_image_rgb(path));
    if (!o.paired_half.empty()) {  // pytorch-CycleGAN-and-pix2pix's aligned layout: A left, B right
      const int64_t half = image.size(2) / 2;
      image = image.narrow(2, o.paired_half == "A" ? 0 : half, half).contiguous();
    }
    if (!pending.empty() && (pending.front().sizes() != image.sizes() ||
                             static_cast<int>(pending.size()) >= o.batch_size)) {
      flush();
    }
    pending.push_back(image);
    pending_paths.push_back(path);
  }
  flush();
  bar.finish();
  if (o.common.json) {
    print_json({{"model", o.model}, {"count", written.size()}, {"out", o.out}, {"files", written}});
  } else {
    std::cout << "translated " << written.size() << " image(s) into " << o.out << "\n";
  }
}

void setup_translate(CLI::App& app) {
  auto opts = std::make_shared<TranslateOptions>();
  auto* cmd = app.add_subcommand("translate", "Translate images with a generator file (any size: padded and cropped back)");
  cmd->add_option("--model", opts->model, "Generator file (.safetensors with ganlite metadata) or an exported .onnx")
      ->required();
  cmd->add_option("--input", opts->input, "An image or a folder of images")->required();
  cmd->add_option("--out", opts->out, "Output folder (PNG files named after the inputs)")->required();
  cmd->add_option("--batch-size", opts->batch_size, "Images per forward pass (same-size neighbours)")->capture_default_str();
  cmd->add_option("--pad-multiple", opts->pad_multiple,
                  ".onnx models only: pad inputs to this multiple (4 for ResNet-like, 2^num_downs for U-Net)")
      ->capture_default_str();
  cmd->add_option("--precision", opts->precision, "Generator files: compute precision (bf16: oneDNN/AMX, PSNR > 40 dB vs fp32)")
      ->check(one_of(nn::valid_precisions()))
      ->capture_default_str();
  cmd->add_option("--paired-half", opts->paired_half,
                  "Inputs are A|B pairs side by side (pix2pix test images): translate the A (left) or B (right) half")
      ->check(CLI::IsMember({"A", "B"}));
  cmd->add_option("--instances", opts->instances,
                  "Label-map generators (--task spade; inputs are class-id maps): the instance-id map, or a folder "
                  "of them named as the label maps (without it the class map's own edges are used)");
  add_device_options(*cmd, opts->common);
  add_output_options(*cmd, opts->common);
  cmd->callback([opts] { run_translate(*opts); });
}

}  // namespace

GANLITE_COMMAND("translate", 40, setup_translate);

}  // namespace ganlite::cli
