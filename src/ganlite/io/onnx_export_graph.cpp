// A lowered generator as standard ONNX operators, written so that OpenCV 4.6's DNN module imports
// it (see the pad formulations below). Norms are folded into convs by the lowering's passes.
#include "ganlite/io/onnx_export_graph.h"

#ifdef GANLITE_HAVE_ONNX
#include <torch/torch.h>

#include "ganlite/util/error.h"

namespace ganlite::io::onnx_detail {

using nn::lowering::Act;
using nn::lowering::Graph;
using nn::lowering::Layer;
using nn::lowering::LayerKind;
using nn::lowering::NormSpec;
using nn::lowering::PadMode;
using nn::lowering::PadSpec;

std::string GraphBuilder::initializer(const std::string& name, torch::Tensor t) {
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

std::string GraphBuilder::ints(const std::string& name, const std::vector<int64_t>& values) {
  return initializer(name, torch::tensor(values, torch::kLong));
}

onnx::NodeProto* GraphBuilder::node(const std::string& op, const std::vector<std::string>& inputs,
                                    const std::string& name, std::string* output) {
  onnx::NodeProto* n = graph_->add_node();
  n->set_op_type(op);
  n->set_name(unique(name));
  for (const auto& in : inputs) n->add_input(in);
  *output = n->name() + ":out";
  n->add_output(*output);
  return n;
}

void GraphBuilder::attr(onnx::NodeProto* n, const std::string& name, int64_t v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}

void GraphBuilder::attr(onnx::NodeProto* n, const std::string& name, float v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(v);
}

void GraphBuilder::attr(onnx::NodeProto* n, const std::string& name, const std::string& v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(v);
}

void GraphBuilder::attr(onnx::NodeProto* n, const std::string& name, const std::vector<int64_t>& v) {
  auto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a->add_ints(x);
}

std::string GraphBuilder::unique(const std::string& name) {
  const int count = used_[name]++;
  return count == 0 ? name : name + "#" + std::to_string(count);
}

namespace {

class Writer {
 public:
  explicit Writer(GraphBuilder& b) : b_(b) {}

  Value graph(const Graph& g, Value x) {
    for (const auto& layer : g) x = this->layer(layer, x);
    return x;
  }

 private:
  Value layer(const Layer& l, const Value& x) {
    switch (l.kind) {
      case LayerKind::Conv: return conv(l, x);
      case LayerKind::Pad: return pad(l.pad, l.name, x);
      case LayerKind::Norm: return norm(l.norm, l.name, x);
      case LayerKind::Act: return act(l, x);
      case LayerKind::Residual: return add(x, graph(l.bodies.at(0), x), l.name);
      case LayerKind::Branches: return branches(l, x);
      case LayerKind::SkipConcat: return skip_concat(l, x);
      case LayerKind::Inline: return graph(l.bodies.at(0), x);
      case LayerKind::Eager:
        throw Error("cannot export layer '" + l.name + "' (" + l.eager.what + ") to ONNX: the exporter has no lowering for it");
      default: break;
    }
    throw Error("cannot export layer '" + l.name + "': a layer of the fast inference path reached the ONNX exporter");
  }

  Value add(const Value& a, const Value& b, const std::string& name) {
    std::string y;
    b_.node("Add", {a.name, b.name}, name + ".add", &y);
    return {y, a.channels};
  }

  // Conv or ConvTranspose, after its reflection / replication pad if it has one.
  Value conv(const Layer& l, Value x) {
    const auto& c = l.conv;
    if (c.pre_pad.amount > 0) x = pad(c.pre_pad, l.name + ".pad", x);
    std::vector<std::string> inputs{x.name, b_.initializer(l.name + ".weight", c.weight)};
    if (c.bias.defined()) inputs.push_back(b_.initializer(l.name + ".bias", c.bias));
    std::string y;
    onnx::NodeProto* n = b_.node(c.transposed ? "ConvTranspose" : "Conv", inputs, l.name, &y);
    GraphBuilder::attr(n, "kernel_shape", std::vector<int64_t>{c.weight.size(2), c.weight.size(3)});
    GraphBuilder::attr(n, "strides", c.stride);
    GraphBuilder::attr(n, "pads", std::vector<int64_t>{c.padding[0], c.padding[1], c.padding[0], c.padding[1]});
    GraphBuilder::attr(n, "dilations", c.dilation);
    GraphBuilder::attr(n, "group", c.groups);
    if (c.transposed) GraphBuilder::attr(n, "output_padding", c.output_padding);
    return {y, c.out_channels()};
  }

  // Non-affine InstanceNorm is InstanceNormalization with scale 1 and bias 0; a running-statistics
  // norm left unfolded (after a branch sum) is BatchNormalization of its affine map (mean 0, var 1).
  Value norm(const NormSpec& n, const std::string& name, const Value& x) {
    if (n.kind == NormSpec::Kind::none) return x;
    std::string y;
    if (n.kind == NormSpec::Kind::instance) {
      const int64_t c = n.gamma.defined() ? n.gamma.size(0) : x.channels;
      onnx::NodeProto* node = b_.node("InstanceNormalization",
                                      {x.name, b_.initializer(name + ".weight", n.gamma.defined() ? n.gamma : torch::ones({c})),
                                       b_.initializer(name + ".bias", n.beta.defined() ? n.beta : torch::zeros({c}))},
                                      name, &y);
      GraphBuilder::attr(node, "epsilon", static_cast<float>(n.eps));
      return {y, x.channels};
    }
    const int64_t c = n.affine.scale.size(0);
    onnx::NodeProto* node = b_.node(
        "BatchNormalization",
        {x.name, b_.initializer(name + ".scale", n.affine.scale), b_.initializer(name + ".shift", n.affine.shift),
         b_.initializer(name + ".mean", torch::zeros({c})), b_.initializer(name + ".var", torch::ones({c}))},
        name, &y);
    GraphBuilder::attr(node, "epsilon", 0.0f);
    return {y, x.channels};
  }

  Value act(const Layer& l, const Value& x) {
    std::string y;
    if (l.act.kind == Act::relu) b_.node("Relu", {x.name}, l.name, &y);
    if (l.act.kind == Act::tanh) b_.node("Tanh", {x.name}, l.name, &y);
    if (l.act.kind == Act::leaky_relu) {
      GraphBuilder::attr(b_.node("LeakyRelu", {x.name}, l.name, &y), "alpha", static_cast<float>(l.act.slope));
    }
    return y.empty() ? x : Value{y, x.channels};
  }

  // x + norm(sum of branches) in the order the LibTorch model sums them: res, dw, res + dw.
  Value branches(const Layer& l, const Value& x) {
    Value res, dw;
    for (size_t j = 0; j < l.bodies.size(); ++j) {
      Value& sum = j < l.res_branches ? res : dw;
      const Value y = graph(l.bodies[j], x);
      sum = sum.name.empty() ? y : add(sum, y, l.bodies[j].empty() ? l.name : l.bodies[j].front().name);
    }
    if (res.name.empty() && dw.name.empty()) return x;
    const Value sum = res.name.empty() ? dw : dw.name.empty() ? res : add(res, dw, l.name + ".branches");
    return add(x, norm(l.norm, l.norm_name, sum), l.name);
  }

  // cat(act(x), body(act(x))).
  Value skip_concat(const Layer& l, const Value& x) {
    std::string skip, y;
    GraphBuilder::attr(b_.node("LeakyRelu", {x.name}, l.name + ".act", &skip), "alpha", static_cast<float>(l.act.slope));
    const Value inner = graph(l.bodies.at(0), {skip, x.channels});
    GraphBuilder::attr(b_.node("Concat", {skip, inner.name}, l.name + ".cat", &y), "axis", int64_t{1});
    return {y, x.channels + inner.channels};
  }

  Value pad(const PadSpec& p, const std::string& name, const Value& x) {
    const int64_t a = p.amount;
    if (p.mode == PadMode::replicate) return edge_padding(x, a, name);
    if (p.mode == PadMode::zero) return {zero_pad(x, {a, a, a, a}, name), x.channels};
    std::string y;
    GraphBuilder::attr(b_.node("Pad", {x.name, b_.ints(name + ".pads", {0, 0, a, a, 0, 0, a, a})}, name, &y), "mode",
                       std::string("reflect"));
    return {y, x.channels};
  }

  // Zero padding of `x` by `pads` (ONNX Conv order: top, left, bottom, right) as a depthwise 1x1
  // conv of weight 1 whose own padding adds the zeros: x * 1 + 0 is exact. The same values as
  // Pad(constant 0); used for a zero pad no conv follows and by edge_padding below. (OpenCV 4.6
  // reuses shape-dependent state of a Net across input sizes; OnnxRunner handles that.)
  std::string zero_pad(const Value& x, const std::vector<int64_t>& pads, const std::string& name, float weight = 1.0f,
                       bool with_bias = false) {
    const int64_t c = x.channels;
    std::vector<std::string> inputs{x.name, b_.initializer(name + ".weight", torch::full({c, 1, 1, 1}, weight))};
    if (with_bias) inputs.push_back(b_.initializer(name + ".bias", torch::ones({c})));
    std::string y;
    onnx::NodeProto* conv = b_.node("Conv", inputs, name, &y);
    GraphBuilder::attr(conv, "kernel_shape", std::vector<int64_t>{1, 1});
    GraphBuilder::attr(conv, "pads", pads);
    GraphBuilder::attr(conv, "group", c);
    return y;
  }

  // Replication padding. ONNX has Pad mode "edge", but OpenCV 4.6's DNN importer accepts only the
  // constant and reflect modes (its PaddingLayer rejects "edge"). So each pad-by-one step
  // along an axis is written, for any input size, as
  //   Z + B * N,  Z = zero_pad(x),  N = depthwise conv [1, 0, 1] over Z (zero padded),
  //   B = conv(x * 0 + 1, weight -1, bias 1, zero padded): 0 inside, 1 on the new border,
  // so the border takes its one real neighbour (the edge value) and the inside stays x; only
  // zeros are added, so it is exact. Padding by p repeats the step p times; W first then H gives
  // replication's corners.
  Value edge_padding(Value x, int64_t amount, const std::string& path) {
    const int64_t c = x.channels;
    for (const bool width : {true, false}) {
      const std::vector<int64_t> pads = width ? std::vector<int64_t>{0, 1, 0, 1} : std::vector<int64_t>{1, 0, 1, 0};
      for (int64_t step = 0; step < amount; ++step) {
        const std::string name = path + (width ? ".w" : ".h") + std::to_string(step);
        std::string zeros, ones, sum, masked;
        b_.node("Mul", {x.name, b_.initializer(name + ".zero", torch::tensor(0.0f))}, name + ".times0", &zeros);
        b_.node("Add", {zeros, b_.initializer(name + ".one", torch::tensor(1.0f))}, name + ".ones", &ones);
        const std::string mask = zero_pad({ones, c}, pads, name + ".mask", -1.0f, /*with_bias=*/true);
        const std::string zero = zero_pad(x, pads, name + ".pad");
        const torch::Tensor kernel = torch::tensor({1.0f, 0.0f, 1.0f})
                                         .view(width ? std::vector<int64_t>{1, 1, 1, 3} : std::vector<int64_t>{1, 1, 3, 1})
                                         .repeat({c, 1, 1, 1});
        onnx::NodeProto* conv =
            b_.node("Conv", {zero, b_.initializer(name + ".neighbours", kernel)}, name + ".neighbours", &sum);
        GraphBuilder::attr(conv, "kernel_shape", width ? std::vector<int64_t>{1, 3} : std::vector<int64_t>{3, 1});
        GraphBuilder::attr(conv, "pads", pads);
        GraphBuilder::attr(conv, "group", c);
        b_.node("Mul", {mask, sum}, name + ".border", &masked);
        b_.node("Add", {zero, masked}, name + ".edge", &x.name);
      }
    }
    return x;
  }

  GraphBuilder& b_;
};

}  // namespace

Value write_graph(GraphBuilder& builder, const Graph& graph, const Value& x) { return Writer(builder).graph(graph, x); }

}  // namespace ganlite::io::onnx_detail

#endif  // GANLITE_HAVE_ONNX
