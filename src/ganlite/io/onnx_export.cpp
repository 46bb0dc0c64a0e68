#include "ganlite/io/onnx_export.h"

#include <torch/torch.h>

#include <algorithm>
#include <limits>
#include <map>
#include <memory>
#include <vector>

#include "ganlite/nn/arch_config.h"
#include "ganlite/nn/fold_norm.h"
#include "ganlite/nn/forward_trace.h"
#include "ganlite/nn/inception_generator.h"
#include "ganlite/nn/layers.h"
#include "ganlite/nn/mobile_resnet_generator.h"
#include "ganlite/nn/resnet_generator.h"
#include "ganlite/nn/unet_generator.h"
#include "ganlite/torch_compat.h"
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
  if (options.input_size % multiple != 0) {
    throw UsageError("--input-size " + std::to_string(options.input_size) + " must be a multiple of " +
                     std::to_string(multiple) + " for the " + config.arch + " generator");
  }
}

}  // namespace

#ifdef GANLITE_HAVE_ONNX
namespace {

using ModulePtr = std::shared_ptr<torch::nn::Module>;

template <typename T>
const T* as(const ModulePtr& m) {
  return dynamic_cast<const T*>(m.get());
}

std::vector<int64_t> conv_padding(const torch::nn::detail::ConvNdOptions<2>& options, const std::string& path) {
  if (const auto* pads = compat::variant_get_if<torch::ExpandingArray<2>>(options.padding())) {
    return {(**pads)[0], (**pads)[1]};
  }
  if (compat::variant_get_if<torch::enumtype::kValid>(options.padding()) != nullptr) return {0, 0};
  throw Error("cannot export layer '" + path + "': 'same' conv padding is not supported");
}

// Owns the graph being written; every value gets a unique name.
class GraphBuilder {
 public:
  explicit GraphBuilder(onnx::GraphProto* graph) : graph_(graph) {}

  std::string initializer(const std::string& name, torch::Tensor t) {
    t = t.detach().to(torch::kCPU).contiguous();
    onnx::TensorProto* proto = graph_->add_initializer();
    proto->set_name(name);
    for (int64_t d : t.sizes()) proto->add_dims(d);
    if (t.scalar_type() == torch::kLong) {
      proto->set_data_type(onnx::TensorProto::INT64);
    } else {
      t = t.to(torch::kFloat).contiguous();
      proto->set_data_type(onnx::TensorProto::FLOAT);
      parameters_ += t.numel();
    }
    // raw_data is little-endian, as is every machine ganlite builds on.
    proto->set_raw_data(std::string(static_cast<const char*>(t.data_ptr()), t.nbytes()));
    return name;
  }
  std::string ints(const std::string& name, const std::vector<int64_t>& values) {
    return initializer(name, torch::tensor(values, torch::kLong));
  }

  // Adds a node with one output named after `name`; returns the output's name.
  onnx::NodeProto* node(const std::string& op, const std::vector<std::string>& inputs, const std::string& name,
                        std::string* output) {
    onnx::NodeProto* n = graph_->add_node();
    n->set_op_type(op);
    n->set_name(unique(name));
    for (const auto& in : inputs) n->add_input(in);
    *output = n->name() + ":out";
    n->add_output(*output);
    return n;
  }

  static void attr(onnx::NodeProto* n, const std::string& name, int64_t v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void attr(onnx::NodeProto* n, const std::string& name, float v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(v);
  }
  static void attr(onnx::NodeProto* n, const std::string& name, const std::string& v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::STRING);
    a->set_s(v);
  }
  static void attr(onnx::NodeProto* n, const std::string& name, const std::vector<int64_t>& v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
  }

  int64_t parameters() const { return parameters_; }

 private:
  std::string unique(const std::string& name) {
    const int count = used_[name]++;
    return count == 0 ? name : name + "#" + std::to_string(count);
  }

  onnx::GraphProto* graph_;
  std::map<std::string, int> used_;
  int64_t parameters_ = 0;
};

// Walks a generator's module tree in execution order, emitting nodes.
class Exporter {
 public:
  // `channels`: the output channels of leaf layers whose ONNX form needs them (replication pads).
  Exporter(GraphBuilder& b, std::map<const torch::nn::Module*, int64_t> channels)
      : b_(b), channels_(std::move(channels)) {}

  std::string generator(nn::GeneratorImpl& g, const std::string& x) {
    if (auto* r = dynamic_cast<nn::ResnetLikeGeneratorImpl*>(&g)) return sequential(*r->model, "model", x);
    if (auto* inc = dynamic_cast<nn::InceptionGeneratorImpl*>(&g)) {
      std::string y = sequential(*inc->down_sampling, "down_sampling", x);
      y = sequential(*inc->features, "features", y);
      return sequential(*inc->up_sampling, "up_sampling", y);
    }
    if (auto* u = dynamic_cast<nn::UnetGeneratorImpl*>(&g)) return unet_block(*u->model, "model", x);
    throw Error("cannot export a generator of type " + g.name() + " (arch '" + g.config().arch + "')");
  }

 private:
  std::string sequential(torch::nn::SequentialImpl& seq, const std::string& path, std::string x, size_t begin = 0) {
    for (size_t i = begin; i < seq.size(); ++i) {
      const ModulePtr layer = seq.ptr(i);
      const std::string name = path + "." + std::to_string(i);
      // A BatchNorm right after a conv is folded into it (eval-mode statistics).
      const torch::nn::BatchNorm2dImpl* bn =
          i + 1 < seq.size() ? dynamic_cast<const torch::nn::BatchNorm2dImpl*>(seq.ptr(i + 1).get()) : nullptr;
      if (const auto* conv = as<torch::nn::Conv2dImpl>(layer)) {
        x = convolution(conv, nullptr, name, x, bn);
        if (bn != nullptr) ++i;
      } else if (const auto* convt = as<torch::nn::ConvTranspose2dImpl>(layer)) {
        x = convolution(nullptr, convt, name, x, bn);
        if (bn != nullptr) ++i;
      } else {
        x = module(layer, name, x);
      }
    }
    return x;
  }

  std::string module(const ModulePtr& m, const std::string& path, const std::string& x) {
    std::string y;
    if (auto* block = dynamic_cast<nn::ResnetBlockImpl*>(m.get())) {
      return add(x, sequential(*block->conv_block, path + ".conv_block", x), path);
    }
    if (auto* block = dynamic_cast<nn::MobileResnetBlockImpl*>(m.get())) {
      return add(x, sequential(*block->conv_block, path + ".conv_block", x), path);
    }
    if (auto* sep = dynamic_cast<nn::SeparableConv2dImpl*>(m.get())) return sequential(*sep->conv, path + ".conv", x);
    if (auto* block = dynamic_cast<nn::InvertedResidualChannelsImpl*>(m.get())) return inception_block(*block, path, x);
    if (auto* block = dynamic_cast<nn::UnetSkipConnectionBlockImpl*>(m.get())) return unet_block(*block, path, x);
    if (auto* seq = dynamic_cast<torch::nn::SequentialImpl*>(m.get())) return sequential(*seq, path, x);
    if (const auto* conv = as<torch::nn::Conv2dImpl>(m)) return convolution(conv, nullptr, path, x, nullptr);
    if (const auto* convt = as<torch::nn::ConvTranspose2dImpl>(m)) return convolution(nullptr, convt, path, x, nullptr);
    if (const auto* in = as<torch::nn::InstanceNorm2dImpl>(m)) return instance_norm(*in, path, x);
    if (const auto* bn = as<torch::nn::BatchNorm2dImpl>(m)) return batch_norm(*bn, path, x);
    if (const auto* pad = as<torch::nn::ReflectionPad2dImpl>(m)) return padding(*pad->options.padding(), "reflect", 0.0, path, x);
    if (const auto* pad = as<torch::nn::ReplicationPad2dImpl>(m)) return edge_padding(*m, *pad->options.padding(), path, x);
    if (const auto* pad = as<torch::nn::ConstantPad2dImpl>(m)) return constant_padding(*pad, path, x);
    if (as<torch::nn::ReLUImpl>(m) != nullptr) {
      b_.node("Relu", {x}, path, &y);
      return y;
    }
    if (const auto* leaky = as<torch::nn::LeakyReLUImpl>(m)) {
      GraphBuilder::attr(b_.node("LeakyRelu", {x}, path, &y), "alpha", static_cast<float>(leaky->options.negative_slope()));
      return y;
    }
    if (as<torch::nn::TanhImpl>(m) != nullptr) {
      b_.node("Tanh", {x}, path, &y);
      return y;
    }
    // Identity in eval mode.
    if (as<torch::nn::DropoutImpl>(m) != nullptr || as<torch::nn::IdentityImpl>(m) != nullptr) return x;
    throw Error("cannot export layer '" + path + "' of type " + m->name() + " to ONNX (not supported by the exporter)");
  }

  std::string add(const std::string& a, const std::string& b, const std::string& path) {
    std::string y;
    b_.node("Add", {a, b}, path + ".add", &y);
    return y;
  }

  // x + pw_bn(sum of branches) in the order the LibTorch model sums them; x when no branch.
  std::string inception_block(nn::InvertedResidualChannelsImpl& block, const std::string& path, const std::string& x) {
    std::string res, dw;
    for (size_t j = 0; j < block.res_ops->size(); ++j) {
      auto seq = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(block.res_ops->ptr(j));
      const std::string name = path + ".res_ops." + std::to_string(j);
      const std::string y = sequential(*seq, name, x);
      res = res.empty() ? y : add(res, y, name);
    }
    for (size_t j = 0; j < block.dw_ops->size(); ++j) {
      auto seq = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(block.dw_ops->ptr(j));
      const std::string name = path + ".dw_ops." + std::to_string(j);
      const std::string y = sequential(*seq, name, x);
      dw = dw.empty() ? y : add(dw, y, name);
    }
    if (res.empty() && dw.empty()) return x;
    const std::string sum = res.empty() ? dw : dw.empty() ? res : add(res, dw, path + ".branches");
    return add(x, module(block.pw_bn.ptr(), path + ".pw_bn", sum), path);
  }

  // outermost: model(x); others: concat(LeakyReLU(x), rest of model) -- the public code's
  // in-place LeakyReLU makes the skip carry the activated input (see unet_generator.h).
  std::string unet_block(nn::UnetSkipConnectionBlockImpl& block, const std::string& path, const std::string& x) {
    torch::nn::SequentialImpl& seq = *block.model;
    const std::string model = path + ".model";
    if (seq.size() == 0 || as<torch::nn::LeakyReLUImpl>(seq.ptr(0)) == nullptr) return sequential(seq, model, x);
    const std::string skip = module(seq.ptr(0), model + ".0", x);
    const std::string inner = sequential(seq, model, skip, 1);
    std::string y;
    GraphBuilder::attr(b_.node("Concat", {skip, inner}, path + ".cat", &y), "axis", int64_t{1});
    return y;
  }

  // Conv or ConvTranspose (exactly one given), with an optional BatchNorm folded in.
  std::string convolution(const torch::nn::Conv2dImpl* conv, const torch::nn::ConvTranspose2dImpl* convt,
                          const std::string& path, const std::string& x, const torch::nn::BatchNorm2dImpl* bn) {
    const torch::nn::detail::ConvNdOptions<2>& o = conv != nullptr ? conv->options : convt->options;
    if (compat::variant_get_if<torch::enumtype::kZeros>(o.padding_mode()) == nullptr) {
      throw Error("cannot export layer '" + path + "': only zero padding_mode convs are supported");
    }
    torch::NoGradGuard no_grad;
    const torch::Tensor& w0 = conv != nullptr ? conv->weight : convt->weight;
    const torch::Tensor& b0 = conv != nullptr ? conv->bias : convt->bias;
    torch::Tensor weight = w0.detach().to(torch::kCPU, torch::kDouble);
    torch::Tensor bias;
    if (b0.defined()) bias = b0.detach().to(torch::kCPU, torch::kDouble);
    const bool transposed = convt != nullptr;
    if (bn != nullptr) {
      const auto affine = nn::running_norm_affine(*bn);
      if (!affine) throw Error("cannot export layer '" + path + "' followed by a BatchNorm without running statistics");
      if (transposed && o.groups() != 1) {
        throw Error("cannot fold a BatchNorm into the grouped transposed conv '" + path + "'");
      }
      const nn::ChannelAffine on_cpu{affine->scale.to(torch::kCPU), affine->shift.to(torch::kCPU)};
      nn::ConvWeights folded = nn::fold_affine_into_conv(weight, bias, on_cpu, transposed ? 1 : 0);
      weight = std::move(folded.weight);
      bias = std::move(folded.bias);
    }
    std::vector<std::string> inputs{x, b_.initializer(path + ".weight", weight)};
    if (bias.defined()) inputs.push_back(b_.initializer(path + ".bias", bias));
    std::string y;
    onnx::NodeProto* n = b_.node(transposed ? "ConvTranspose" : "Conv", inputs, path, &y);
    const auto pads = conv_padding(o, path);
    GraphBuilder::attr(n, "kernel_shape", std::vector<int64_t>((*o.kernel_size()).begin(), (*o.kernel_size()).end()));
    GraphBuilder::attr(n, "strides", std::vector<int64_t>((*o.stride()).begin(), (*o.stride()).end()));
    GraphBuilder::attr(n, "pads", std::vector<int64_t>{pads[0], pads[1], pads[0], pads[1]});
    GraphBuilder::attr(n, "dilations", std::vector<int64_t>((*o.dilation()).begin(), (*o.dilation()).end()));
    GraphBuilder::attr(n, "group", o.groups());
    if (transposed) {
      GraphBuilder::attr(n, "output_padding", std::vector<int64_t>((*o.output_padding()).begin(), (*o.output_padding()).end()));
    }
    return y;
  }

  // Non-affine InstanceNorm is InstanceNormalization with scale 1 and bias 0.
  std::string instance_norm(const torch::nn::InstanceNorm2dImpl& in, const std::string& path, const std::string& x) {
    if (in.options.track_running_stats()) {
      throw Error("cannot export layer '" + path + "': InstanceNorm with running statistics is not supported");
    }
    const int64_t c = in.options.num_features();
    const torch::Tensor scale = in.options.affine() ? in.weight : torch::ones({c});
    const torch::Tensor shift = in.options.affine() ? in.bias : torch::zeros({c});
    std::string y;
    onnx::NodeProto* n = b_.node(
        "InstanceNormalization",
        {x, b_.initializer(path + ".weight", scale), b_.initializer(path + ".bias", shift)}, path, &y);
    GraphBuilder::attr(n, "epsilon", static_cast<float>(in.options.eps()));
    return y;
  }

  // A BatchNorm not preceded by a conv (CAT's pw_bn after the branch sum).
  std::string batch_norm(const torch::nn::BatchNorm2dImpl& bn, const std::string& path, const std::string& x) {
    if (!bn.options.track_running_stats() || !bn.running_mean.defined()) {
      throw Error("cannot export layer '" + path + "': BatchNorm without running statistics");
    }
    const int64_t c = bn.options.num_features();
    std::string y;
    onnx::NodeProto* n = b_.node(
        "BatchNormalization",
        {x, b_.initializer(path + ".weight", bn.weight.defined() ? bn.weight : torch::ones({c})),
         b_.initializer(path + ".bias", bn.bias.defined() ? bn.bias : torch::zeros({c})),
         b_.initializer(path + ".running_mean", bn.running_mean), b_.initializer(path + ".running_var", bn.running_var)},
        path, &y);
    GraphBuilder::attr(n, "epsilon", static_cast<float>(bn.options.eps()));
    return y;
  }

  // LibTorch pads are (left, right, top, bottom); ONNX's are all begins then all ends over NCHW.
  std::string padding(torch::ArrayRef<int64_t> p, const std::string& mode, double value, const std::string& path,
                      const std::string& x) {
    std::vector<std::string> inputs{x, b_.ints(path + ".pads", {0, 0, p[2], p[0], 0, 0, p[3], p[1]})};
    if (mode == "constant") inputs.push_back(b_.initializer(path + ".value", torch::tensor(static_cast<float>(value))));
    std::string y;
    GraphBuilder::attr(b_.node("Pad", inputs, path, &y), "mode", mode);
    return y;
  }

  // Zero padding of `x` (c channels) by `pads` (ONNX Conv order: top, left, bottom, right) as a
  // depthwise 1x1 conv of weight 1 whose own padding adds the zeros: x * 1 + 0 is exact. The same
  // values as Pad(constant 0); used for ConstantPad2d and by edge_padding below. (OpenCV 4.6
  // reuses shape-dependent state of a Net across input sizes; OnnxRunner handles that.)
  std::string zero_pad(const std::string& x, int64_t c, const std::vector<int64_t>& pads, const std::string& name,
                       float weight = 1.0f, bool with_bias = false) {
    std::vector<std::string> inputs{x, b_.initializer(name + ".weight", torch::full({c, 1, 1, 1}, weight))};
    if (with_bias) inputs.push_back(b_.initializer(name + ".bias", torch::ones({c})));
    std::string y;
    onnx::NodeProto* conv = b_.node("Conv", inputs, name, &y);
    GraphBuilder::attr(conv, "kernel_shape", std::vector<int64_t>{1, 1});
    GraphBuilder::attr(conv, "pads", pads);
    GraphBuilder::attr(conv, "group", c);
    return y;
  }

  int64_t channels_of(const torch::nn::Module& layer, const std::string& path) const {
    auto it = channels_.find(&layer);
    if (it == channels_.end()) throw Error("cannot export layer '" + path + "': its channel count is unknown");
    return it->second;
  }

  // ConstantPad2d: zero padding through zero_pad(); another value falls back to Pad (constant).
  std::string constant_padding(const torch::nn::ConstantPad2dImpl& pad, const std::string& path, const std::string& x) {
    const auto p = *pad.options.padding();
    if (pad.options.value() != 0.0) return padding(p, "constant", pad.options.value(), path, x);
    return zero_pad(x, channels_of(pad, path), {p[2], p[0], p[3], p[1]}, path);
  }

  // ReplicationPad2d. ONNX has Pad mode "edge", but OpenCV 4.6's DNN importer accepts only the
  // constant and reflect modes (its PaddingLayer rejects "edge"). So each pad-by-one step
  // along an axis is written, for any input size, as
  //   Z + B * N,  Z = zero_pad(x),  N = depthwise conv [1, 0, 1] over Z (zero padded),
  //   B = conv(x * 0 + 1, weight -1, bias 1, zero padded): 0 inside, 1 on the new border,
  // so the border takes its one real neighbour (the edge value) and the inside stays x; only
  // zeros are added, so it is exact. Padding by p repeats the step p times; W first then H gives
  // replication's corners.
  std::string edge_padding(const torch::nn::Module& layer, torch::ArrayRef<int64_t> p, const std::string& path,
                           std::string x) {
    const int64_t c = channels_of(layer, path);
    const int64_t before[2] = {p[0], p[2]};  // W (left), H (top)
    const int64_t after[2] = {p[1], p[3]};
    for (int a = 0; a < 2; ++a) {
      if (before[a] != after[a]) throw Error("cannot export layer '" + path + "': asymmetric replication padding");
      const bool width = a == 0;
      const std::vector<int64_t> pads = width ? std::vector<int64_t>{0, 1, 0, 1} : std::vector<int64_t>{1, 0, 1, 0};
      for (int64_t step = 0; step < before[a]; ++step) {
        const std::string name = path + (width ? ".w" : ".h") + std::to_string(step);
        std::string zeros, ones, sum, masked;
        b_.node("Mul", {x, b_.initializer(name + ".zero", torch::tensor(0.0f))}, name + ".times0", &zeros);
        b_.node("Add", {zeros, b_.initializer(name + ".one", torch::tensor(1.0f))}, name + ".ones", &ones);
        const std::string mask = zero_pad(ones, c, pads, name + ".mask", -1.0f, /*with_bias=*/true);
        const std::string zero = zero_pad(x, c, pads, name + ".pad");
        const torch::Tensor kernel = torch::tensor({1.0f, 0.0f, 1.0f})
                                         .view(width ? std::vector<int64_t>{1, 1, 1, 3} : std::vector<int64_t>{1, 1, 3, 1})
                                         .repeat({c, 1, 1, 1});
        onnx::NodeProto* conv =
            b_.node("Conv", {zero, b_.initializer(name + ".neighbours", kernel)}, name + ".neighbours", &sum);
        GraphBuilder::attr(conv, "kernel_shape", width ? std::vector<int64_t>{1, 3} : std::vector<int64_t>{3, 1});
        GraphBuilder::attr(conv, "pads", pads);
        GraphBuilder::attr(conv, "group", c);
        b_.node("Mul", {mask, sum}, name + ".border", &masked);
        b_.node("Add", {zero, masked}, name + ".edge", &x);
      }
    }
    return x;
  }

  GraphBuilder& b_;
  std::map<const torch::nn::Module*, int64_t> channels_;
};

// Records each leaf layer's output channels during a LibTorch forward pass.
class ChannelRecorder : public nn::ForwardObserver {
 public:
  void on_leaf_output(const torch::nn::Module& layer, const torch::Tensor& output) override {
    if (output.dim() == 4) channels[&layer] = output.size(1);
  }
  std::map<const torch::nn::Module*, int64_t> channels;
};

// Channels of the generator's replication and constant pads, from one small forward pass (none needed otherwise).
std::map<const torch::nn::Module*, int64_t> replication_pad_channels(nn::GeneratorImpl& g) {
  bool any = false;
  for (const auto& m : g.modules()) {
    any |= dynamic_cast<const torch::nn::ReplicationPad2dImpl*>(m.get()) != nullptr ||
           dynamic_cast<const torch::nn::ConstantPad2dImpl*>(m.get()) != nullptr;
  }
  if (!any) return {};
  const auto& config = g.config();
  const int64_t side = std::max<int64_t>(16, nn::size_multiple(config));
  const auto params = g.parameters();
  const auto options = torch::TensorOptions().device(params.empty() ? torch::Device(torch::kCPU) : params[0].device());
  ChannelRecorder recorder;
  torch::NoGradGuard no_grad;
  const bool training = g.is_training();
  g.eval();
  {
    nn::ScopedForwardObserver scope(&recorder);
    g.forward(torch::zeros({1, config.input_nc, side, side}, options));
  }
  g.train(training);
  return recorder.channels;
}

void set_shape(onnx::ValueInfoProto* value, int64_t channels, const OnnxExportOptions& options) {
  value->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  auto* shape = value->mutable_type()->mutable_tensor_type()->mutable_shape();
  shape->add_dim()->set_dim_param("batch");
  shape->add_dim()->set_dim_value(channels);
  for (const char* name : {"height", "width"}) {
    if (options.dynamic_size) {
      shape->add_dim()->set_dim_param(name);
    } else {
      shape->add_dim()->set_dim_value(options.input_size);
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

  GraphBuilder builder(graph);
  Exporter exporter(builder, replication_pad_channels(generator));
  auto* input = graph->add_input();
  input->set_name("input");
  set_shape(input, generator.config().input_nc, options);
  const std::string out = exporter.generator(generator, "input");
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
