// `ganlite export`: writes a generator as an ONNX graph and checks that OpenCV DNN runs it with
// LibTorch's outputs.
#include <torch/torch.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "command.h"
#include "ganlite/io/checkpoint.h"
#include "ganlite/io/onnx_export.h"
#include "ganlite/io/onnx_runner.h"
#include "ganlite/util/device.h"
#include "ganlite/util/error.h"
#include "ganlite/util/progress.h"

namespace ganlite::cli {
namespace {

// Largest |OpenCV - LibTorch| the verification accepts: float32 summation-order noise only.
constexpr double kVerifyTolerance = 1e-3;

struct ExportCliOptions {
  CommonOptions common;
  std::string model, out, format = "onnx";
  io::OnnxExportOptions onnx;
  std::string input_size = "256";  // "S" or "HxW"
  bool no_verify = false;
};

// "256" -> side 256; "64x128" -> height 64, width 128 (GauGAN's generators take rectangles).
void set_export_size(const std::string& text, io::OnnxExportOptions& onnx) {
  const auto x = text.find('x');
  auto side = [&text](const std::string& part) {
    size_t used = 0;
    int value = 0;
    try {
      value = std::stoi(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (part.empty() || used != part.size() || value <= 0) {
      throw UsageError("--input-size must be a side (256) or HxW (64x128), got '" + text + "'");
    }
    return value;
  };
  if (x == std::string::npos) {
    onnx.input_size = side(text);
    return;
  }
  onnx.input_height = side(text.substr(0, x));
  onnx.input_width = side(text.substr(x + 1));
  onnx.input_size = onnx.input_height;
}

void run_export(ExportCliOptions o) {
  apply_common(o.common);
  set_export_size(o.input_size, o.onnx);
  const int height = o.onnx.input_height > 0 ? o.onnx.input_height : o.onnx.input_size;
  const int width = o.onnx.input_width > 0 ? o.onnx.input_width : o.onnx.input_size;
  const bool square = o.onnx.input_height == 0;
  const torch::Device device = parse_device(o.common.device);
  ProgressBar bar(o.no_verify ? 1 : 3, "export");
  nn::Generator generator = io::load_generator(o.model, torch::kCPU);
  generator->eval();
  const io::OnnxExportSummary summary = io::export_onnx(*generator, o.out, o.onnx);
  bar.advance(1, "written");

  nlohmann::json verify = nullptr;
  if (!o.no_verify) {
    torch::NoGradGuard no_grad;
    const auto& config = generator->config();
    torch::manual_seed(0);
    const torch::Tensor x = torch::rand({1, config.input_nc, height, width}) * 2 - 1;
    io::OnnxRunner runner(o.out);
    const torch::Tensor from_onnx = runner.run(x);
    bar.advance(1, "OpenCV DNN");
    generator->to(device);
    const torch::Tensor from_torch = generator->forward(x.to(device)).cpu();
    bar.advance(1, "LibTorch");
    if (from_onnx.sizes() != from_torch.sizes()) {
      throw Error(o.out + ": OpenCV DNN output shape " + c10::str(from_onnx.sizes()) + " differs from LibTorch's " +
                  c10::str(from_torch.sizes()));
    }
    const double diff = (from_onnx - from_torch).abs().max().item<double>();
    verify = {{"input_size", square ? nlohmann::json(height) : nlohmann::json({height, width})},
              {"max_abs_diff", diff},
              {"tolerance", kVerifyTolerance}};
    if (!(diff <= kVerifyTolerance)) {
      throw Error(o.out + ": OpenCV DNN's output differs from LibTorch's by " + std::to_string(diff) +
                  " (tolerance " + std::to_string(kVerifyTolerance) + ")");
    }
  }
  bar.finish();
  if (o.common.json) {
    print_json({{"model", o.model},
                {"out", o.out},
                {"format", o.format},
                {"opset", o.onnx.opset},
                {"dynamic_size", o.onnx.dynamic_size},
                {"input_size", square ? nlohmann::json(height) : nlohmann::json({height, width})},
                {"nodes", summary.nodes},
                {"initializers", summary.initializers},
                {"parameters", summary.parameters},
                {"bytes", summary.bytes},
                {"verify", verify}});
    return;
  }
  if (!o.common.quiet) {
    std::cout << "wrote " << o.out << ": " << summary.nodes << " nodes, " << summary.parameters << " parameters, "
              << summary.bytes << " bytes (opset " << o.onnx.opset << (o.onnx.dynamic_size ? ", dynamic size" : "")
              << ")\n";
    if (!verify.is_null()) {
      std::cout << "OpenCV DNN matches LibTorch at " << height << "x" << width
                << ": max |diff| " << verify["max_abs_diff"].get<double>() << "\n";
    }
  }
}

void setup_export(CLI::App& app) {
  auto o = std::make_shared<ExportCliOptions>();
  auto* cmd = app.add_subcommand("export", "Export a generator to ONNX (checked, and verified with OpenCV DNN)");
  cmd->add_option("--model", o->model, "Generator file (.safetensors)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--format", o->format, "Output format")->check(one_of({"onnx"}))->capture_default_str();
  cmd->add_option("--out", o->out, "Output file (.onnx)")->required();
  cmd->add_option("--opset", o->onnx.opset, "ONNX opset (11 to 17)")->capture_default_str();
  cmd->add_flag("--dynamic-size", o->onnx.dynamic_size, "Symbolic input height and width");
  cmd->add_option("--input-size", o->input_size,
                  "Input side in pixels, or HxW (spade / inception_spade: multiples of 64, e.g. 64x128): the "
                  "declared shape, and the verification's input")
      ->capture_default_str();
  cmd->add_flag("--no-verify", o->no_verify, "Skip running the exported model in OpenCV DNN against LibTorch");
  add_device_options(*cmd, o->common);
  add_output_options(*cmd, o->common);
  cmd->callback([o] { run_export(*o); });  // a copy: --input-size is parsed into it
}

}  // namespace

GANLITE_COMMAND("export", 75, setup_export);

}  // namespace ganlite::cli
