// ONNX export of a generator: the generator lowered once (nn/lowering.h, the walk the fast
// inference path uses too) with the passes that keep ONNX exact and plain (eval-mode norms folded
// into the conv before them, pads merged into the conv after them), written as standard ONNX
// operators with float32 initializers (io/onnx_export_graph.cpp). The graph is checked with
// onnx::checker before it is written; it is written so that OpenCV 4.6's DNN module imports it
// (see onnx_export_graph.cpp for the formulations chosen for that).
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>

#include "ganlite/nn/generator.h"

namespace ganlite::io {

struct OnnxExportOptions {
  int opset = 13;             // 11 .. 17
  bool dynamic_size = false;  // symbolic height and width
  int input_size = 256;       // height = width of the fixed-size input (and the graph's declared shape)
  int input_height = 0;       // a non-square fixed input (GauGAN's 256x512); 0: input_size
  int input_width = 0;
};

struct OnnxExportSummary {
  int64_t nodes = 0;
  int64_t initializers = 0;
  int64_t parameters = 0;  // initializer elements (after BatchNorm folding)
  size_t bytes = 0;        // size of the serialised model
};

// True when this build links libonnx (GANLITE_HAVE_ONNX).
bool onnx_export_available();

// The serialised, checked ModelProto. Throws UsageError for a bad opset / input size, Error naming
// the layer for a layer the lowering does not know (one the fast path runs eagerly), Error when
// the checker rejects the graph.
std::string export_onnx_bytes(nn::GeneratorImpl& generator, const OnnxExportOptions& options,
                              OnnxExportSummary* summary = nullptr);
// Same, written atomically to `path`.
OnnxExportSummary export_onnx(nn::GeneratorImpl& generator, const std::filesystem::path& path,
                              const OnnxExportOptions& options);

}  // namespace ganlite::io
