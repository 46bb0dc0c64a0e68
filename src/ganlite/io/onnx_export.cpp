#include "ganlite/io/onnx_export.h"

#include <torch/torch.h>

#include <string>

#include "ganlite/io/onnx_export_graph.h"
#include "ganlite/nn/arch_config.h"
#include "ganlite/nn/lowering.h"
#include "ganlite/util/atomic_file.h"
#include "ganlite/util/error.h"

#ifdef GANLITE_HAVE_ONNX
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#endif

namespace ganlite::io {

bool onnx_export_available() {
#ifdef GANLITE_HAVE_ONNX
  return true;
#else
  return false;
#endif
}

namespace {

void validate(const nn::GeneratorImpl& generator, const OnnxExportOptions& options) {
  if (options.opset < 11 || options.opset > 17) {
    throw UsageError("--opset " + std::to_string(options.opset) +
                     " is not supported (valid: 11 to 17; Pad takes its pads as an input from opset 11)");
  }
  require(options.input_size > 0, "--input-size must be positive, got " + std::to_string(options.input_size));
  const auto& config = generator.config();
  const int64_t multiple = nn::size_multiple(config);
  for (const int side : {options.input_size, options.input_height, options.input_width}) {
    if (side % multiple != 0 || side < 0) {
      throw UsageError("--input-size " + std::to_string(side) + " must be a multiple of " + std::to_string(multiple) +
                       " for the " + config.arch + " generator");
    }
  }
}

}  // namespace

#ifdef GANLITE_HAVE_ONNX
namespace {

void set_shape(onnx::ValueInfoProto* value, int64_t channels, const OnnxExportOptions& options) {
  value->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  auto* shape = value->mutable_type()->mutable_tensor_type()->mutable_shape();
  shape->add_dim()->set_dim_param("batch");
  shape->add_dim()->set_dim_value(channels);
  for (const char* name : {"height", "width"}) {
    const int side = name[0] == 'h' ? options.input_height : options.input_width;
    if (options.dynamic_size) {
      shape->add_dim()->set_dim_param(name);
    } else {
      shape->add_dim()->set_dim_value(side > 0 ? side : options.input_size);
    }
  }
}

}  // namespace

std::string export_onnx_bytes(nn::GeneratorImpl& generator, const OnnxExportOptions& options,
                              OnnxExportSummary* summary) {
  validate(generator, options);
  onnx::ModelProto model;
  model.set_ir_version(onnx::IR_VERSION);
  model.set_producer_name("ganlite");
  model.set_producer_version(GANLITE_VERSION);
  model.set_doc_string("ganlite " + generator.config().arch + " generator: " + generator.config().to_json_string());
  auto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(options.opset);
  onnx::GraphProto* graph = model.mutable_graph();
  graph->set_name("ganlite_" + generator.config().arch);

  onnx_detail::GraphBuilder builder(graph);
  auto* input = graph->add_input();
  input->set_name("input");
  set_shape(input, generator.config().input_nc, options);
  const onnx_detail::Value in{"input", generator.config().input_nc};
  onnx_detail::Value written;
  if (!onnx_detail::write_spade_generator(builder, generator, in, &written)) {
    written = onnx_detail::write_graph(builder, nn::lowering::lower(generator, nn::lowering::Consumer::onnx), in);
  }
  const std::string out = written.name;
  // The graph output gets a stable name through a final Identity.
  onnx::NodeProto* last = graph->add_node();
  last->set_op_type("Identity");
  last->set_name("output_identity");
  last->add_input(out);
  last->add_output("output");
  auto* output = graph->add_output();
  output->set_name("output");
  set_shape(output, generator.config().output_nc, options);

  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    throw Error(std::string("the exported ONNX graph fails onnx::checker: ") + e.what());
  }
  std::string bytes;
  if (!model.SerializeToString(&bytes)) throw Error("could not serialise the ONNX model");
  if (summary != nullptr) {
    summary->nodes = graph->node_size();
    summary->initializers = graph->initializer_size();
    summary->parameters = builder.parameters();
    summary->bytes = bytes.size();
  }
  return bytes;
}

#else  // !GANLITE_HAVE_ONNX

std::string export_onnx_bytes(nn::GeneratorImpl& generator, const OnnxExportOptions& options, OnnxExportSummary*) {
  validate(generator, options);
  throw Error("ONNX export is unavailable: this build of ganlite was made without libonnx (install libonnx-dev "
              "and re-run cmake)");
}

#endif

OnnxExportSummary export_onnx(nn::GeneratorImpl& generator, const std::filesystem::path& path,
                              const OnnxExportOptions& options) {
  OnnxExportSummary summary;
  const std::string bytes = export_onnx_bytes(generator, options, &summary);
  write_file_atomic(path, bytes);
  return summary;
}

}  // namespace ganlite::io
