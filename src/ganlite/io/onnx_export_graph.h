// Internal to the ONNX exporter (io/onnx_export.cpp): writing a lowered generator
// (nn/lowering.h) as ONNX nodes. Only in builds with libonnx.
#pragma once
#ifdef GANLITE_HAVE_ONNX
#include <onnx/onnx_pb.h>
#include <torch/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ganlite/nn/generator.h"
#include "ganlite/nn/lowering.h"

namespace ganlite::io::onnx_detail {

// Owns the graph being written; every node gets a unique name.
class GraphBuilder {
 public:
  explicit GraphBuilder(onnx::GraphProto* graph) : graph_(graph) {}

  // A float32 (or int64) initializer named `name`; returns the name.
  std::string initializer(const std::string& name, torch::Tensor t);
  std::string ints(const std::string& name, const std::vector<int64_t>& values);
  // Adds a node with one output named after the node; `*output` receives the output's name.
  onnx::NodeProto* node(const std::string& op, const std::vector<std::string>& inputs, const std::string& name,
                        std::string* output);

  static void attr(onnx::NodeProto* n, const std::string& name, int64_t v);
  static void attr(onnx::NodeProto* n, const std::string& name, float v);
  static void attr(onnx::NodeProto* n, const std::string& name, const std::string& v);
  static void attr(onnx::NodeProto* n, const std::string& name, const std::vector<int64_t>& v);

  int64_t parameters() const { return parameters_; }

 private:
  std::string unique(const std::string& name);

  onnx::GraphProto* graph_;
  std::map<std::string, int> used_;
  int64_t parameters_ = 0;
};

// A value of the graph and its channel count (pads written as convs need it).
struct Value {
  std::string name;
  int64_t channels = 0;
};

// Writes `graph` (lowered for Consumer::onnx) applied to `x`; returns its output. Throws Error
// naming the layer for one the exporter cannot write (an Eager layer).
Value write_graph(GraphBuilder& builder, const nn::lowering::Graph& graph, const Value& x);

// GauGAN's generators (spade, inception_spade), written from their modules
// (io/onnx_export_spade.cpp): false for any other generator.
bool write_spade_generator(GraphBuilder& builder, nn::GeneratorImpl& generator, const Value& input, Value* output);

}  // namespace ganlite::io::onnx_detail

#endif  // GANLITE_HAVE_ONNX
