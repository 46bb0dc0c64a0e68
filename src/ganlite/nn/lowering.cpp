// The one walk over a generator's modules: built-in layers and blocks are recognised by their
// module types (dynamic_cast), never by an architecture's name.
#include "ganlite/nn/lowering.h"

#include <torch/torch.h>

#include <optional>
#include <unordered_map>
#include <utility>

#include "ganlite/nn/generator.h"
#include "ganlite/nn/inception_generator.h"
#include "ganlite/nn/layers.h"
#include "ganlite/nn/mobile_resnet_generator.h"
#include "ganlite/nn/resnet_generator.h"
#include "ganlite/nn/unet_generator.h"
#include "ganlite/torch_compat.h"
#include "ganlite/util/error.h"

namespace ganlite::nn::lowering {

namespace {

using Module = torch::nn::Module;
using ModulePtr = std::shared_ptr<Module>;
using NamedModules = std::vector<std::pair<std::string, ModulePtr>>;

// A layer with no lowering and no forward the runner can call on its own (no Sequential's child).
class NoCallableForward : public Error {
 public:
  using Error::Error;
};

std::string join(const std::string& a, const std::string& b) { return a.empty() ? b : a + "." + b; }

std::vector<int64_t> to_vec(const torch::ExpandingArray<2>& a) { return {a->begin(), a->end()}; }

template <typename T>
std::shared_ptr<T> as(const ModulePtr& m) {
  return std::dynamic_pointer_cast<T>(m);
}

// Layers that are the identity in eval mode.
bool is_dropped(const ModulePtr& m) { return as<torch::nn::DropoutImpl>(m) || as<torch::nn::IdentityImpl>(m); }

std::optional<PadSpec> lower_pad(const ModulePtr& m) {
  auto symmetric = [](const torch::ExpandingArray<4>& p, PadMode mode) -> std::optional<PadSpec> {
    const auto* v = p->data();
    if (v[0] != v[1] || v[0] != v[2] || v[0] != v[3]) return std::nullopt;
    return PadSpec{v[0], mode};
  };
  if (auto r = as<torch::nn::ReflectionPad2dImpl>(m)) return symmetric(r->options.padding(), PadMode::reflect);
  if (auto r = as<torch::nn::ReplicationPad2dImpl>(m)) return symmetric(r->options.padding(), PadMode::replicate);
  if (auto c = as<torch::nn::ConstantPad2dImpl>(m)) {
    if (c->options.value() != 0.0) return std::nullopt;
    return symmetric(c->options.padding(), PadMode::zero);
  }
  return std::nullopt;
}

std::optional<ActSpec> lower_act(const ModulePtr& m) {
  if (as<torch::nn::ReLUImpl>(m)) return ActSpec{Act::relu, 0.0};
  if (auto l = as<torch::nn::LeakyReLUImpl>(m)) return ActSpec{Act::leaky_relu, l->options.negative_slope()};
  if (as<torch::nn::TanhImpl>(m)) return ActSpec{Act::tanh, 0.0};
  return std::nullopt;
}

// A running-statistics norm, an InstanceNorm without them, or Identity (Kind::none).
std::optional<NormSpec> lower_norm(const ModulePtr& m) {
  NormSpec spec;
  if (const auto affine = running_norm_affine(*m)) {
    spec.kind = NormSpec::Kind::running;
    spec.affine = *affine;
    return spec;
  }
  if (auto in = as<torch::nn::InstanceNorm2dImpl>(m); in && !in->options.track_running_stats()) {
    spec.kind = NormSpec::Kind::instance;
    spec.eps = in->options.eps();
    if (in->options.affine()) {
      spec.gamma = in->weight.detach().to(torch::kFloat).clone();
      spec.beta = in->bias.detach().to(torch::kFloat).clone();
    }
    return spec;
  }
  if (as<torch::nn::IdentityImpl>(m)) return spec;
  return std::nullopt;
}

// A Conv2d / ConvTranspose2d with explicit (or 'valid') zero padding, ungrouped if transposed.
std::optional<ConvSpec> lower_conv(const ModulePtr& m) {
  const torch::nn::detail::ConvNdOptions<2>* o = nullptr;
  torch::Tensor weight, bias;
  if (auto c = as<torch::nn::Conv2dImpl>(m)) {
    o = &c->options, weight = c->weight, bias = c->bias;
  } else if (auto t = as<torch::nn::ConvTranspose2dImpl>(m)) {
    o = &t->options, weight = t->weight, bias = t->bias;
  } else {
    return std::nullopt;
  }
  const auto* pads = compat::variant_get_if<torch::ExpandingArray<2>>(o->padding());
  if ((!pads && !compat::variant_holds<torch::enumtype::kValid>(o->padding())) ||
      !compat::variant_holds<torch::enumtype::kZeros>(o->padding_mode()) || (o->transposed() && o->groups() != 1)) {
    return std::nullopt;
  }
  ConvSpec c;
  c.weight = weight.detach().clone();
  if (bias.defined()) c.bias = bias.detach().clone();
  c.stride = to_vec(o->stride());
  c.padding = pads ? to_vec(*pads) : std::vector<int64_t>{0, 0};
  c.dilation = to_vec(o->dilation());
  c.output_padding = to_vec(o->output_padding());
  c.groups = o->groups();
  c.transposed = o->transposed();
  return c;
}

Layer leaf(LayerKind kind, const std::string& name) {
  Layer l;
  l.kind = kind;
  l.name = name;
  return l;
}

class Lowerer {
 public:
  // A Sequential's layers, or the children of any other module in registration order.
  Graph children(const ModulePtr& m, const std::string& prefix) {
    NamedModules layers;
    if (as<torch::nn::SequentialImpl>(m)) {
      flatten(m, prefix, layers);
    } else {
      for (const auto& item : m->named_children()) flatten(item.value(), join(prefix, item.key()), layers);
    }
    return lower_list(layers);
  }

 private:
  // Nested Sequentials (CAT's ConvBNReLU, SeparableConv2d's `conv`) are inlined, so a conv and the
  // norm / activation after it meet in one list whatever the nesting. A Sequential holds its
  // layers as AnyModules, whose forward an Eager layer can call whatever the layer's type.
  void flatten(const ModulePtr& m, const std::string& name, NamedModules& out) {
    if (auto seq = as<torch::nn::SequentialImpl>(m)) {
      const auto items = m->named_children();
      if (items.size() == seq->size()) {
        size_t i = 0;
        for (const auto& any : *seq) callable_[items[i++].value().get()] = any;
      }
      for (const auto& item : items) flatten(item.value(), join(name, item.key()), out);
    } else if (auto sep = as<SeparableConv2dImpl>(m)) {
      flatten(sep->conv.ptr(), join(name, "conv"), out);
    } else {
      out.emplace_back(name, m);
    }
  }

  Graph lower_list(const NamedModules& layers) {
    Graph graph;
    for (const auto& [name, m] : layers) {
      if (!is_dropped(m)) graph.push_back(lower_layer(name, m));
    }
    return graph;
  }

  Layer lower_layer(const std::string& name, const ModulePtr& m) {
    if (auto conv = lower_conv(m)) {
      Layer l = leaf(LayerKind::Conv, name);
      l.conv = std::move(*conv);
      return l;
    }
    if (auto pad = lower_pad(m)) {
      Layer l = leaf(LayerKind::Pad, name);
      l.pad = *pad;
      return l;
    }
    if (auto norm = lower_norm(m)) {
      Layer l = leaf(LayerKind::Norm, name);
      l.norm = std::move(*norm);
      return l;
    }
    if (auto act = lower_act(m)) {
      Layer l = leaf(LayerKind::Act, name);
      l.act = *act;
      return l;
    }
    return lower_block(name, m);
  }

  Layer lower_block(const std::string& name, const ModulePtr& m) {
    if (auto r = as<ResnetBlockImpl>(m)) return residual(children(r->conv_block.ptr(), join(name, "conv_block")), name);
    if (auto r = as<MobileResnetBlockImpl>(m)) {
      return residual(children(r->conv_block.ptr(), join(name, "conv_block")), name);
    }
    if (auto b = as<InvertedResidualChannelsImpl>(m)) {
      if (auto l = inception_block(*b, name)) return std::move(*l);
    }
    if (auto u = as<UnetSkipConnectionBlockImpl>(m)) return unet_block(*u, name);
    return eager(name, m);
  }

  static Layer residual(Graph body, const std::string& name) {
    Layer l = leaf(LayerKind::Residual, name);
    l.bodies.push_back(std::move(body));
    return l;
  }

  // x + pw_bn(sum of res branches + sum of dw branches); nullopt for a pw_bn with no lowering.
  std::optional<Layer> inception_block(InvertedResidualChannelsImpl& b, const std::string& name) {
    Layer l = leaf(LayerKind::Branches, name);
    l.norm_name = join(name, "pw_bn");
    auto norm = lower_norm(b.pw_bn.ptr());
    if (!norm) return std::nullopt;
    l.norm = std::move(*norm);
    for (const auto& item : b.res_ops->named_children()) {
      l.bodies.push_back(children(item.value(), join(name, "res_ops." + item.key())));
    }
    l.res_branches = l.bodies.size();
    for (const auto& item : b.dw_ops->named_children()) {
      l.bodies.push_back(children(item.value(), join(name, "dw_ops." + item.key())));
    }
    return l;
  }

  // middle / innermost: cat([LeakyReLU(x), rest(LeakyReLU(x))]); outermost: the layers in line.
  Layer unet_block(UnetSkipConnectionBlockImpl& u, const std::string& name) {
    NamedModules layers;
    flatten(u.model.ptr(), join(name, "model"), layers);
    const auto act = layers.empty() ? std::nullopt : lower_act(layers.front().second);
    if (act && act->kind == Act::leaky_relu) {
      Layer l = leaf(LayerKind::SkipConcat, name);
      l.act = *act;
      l.bodies.push_back(lower_list(NamedModules(layers.begin() + 1, layers.end())));
      return l;
    }
    Layer l = leaf(LayerKind::Inline, name);
    l.bodies.push_back(lower_list(layers));
    return l;
  }

  // A layer with no lowering (a new architecture's block, a conv with 'same' padding or another
  // padding mode, an asymmetric pad) runs through its own forward.
  Layer eager(const std::string& name, const ModulePtr& m) {
    const auto it = callable_.find(m.get());
    if (it == callable_.end()) throw NoCallableForward("inference: '" + name + "' (" + m->name() + ") is no Sequential's child");
    Layer l = leaf(LayerKind::Eager, name);
    l.eager.module = m;
    l.eager.forward = [any = it->second](torch::Tensor x) mutable { return any.forward(std::move(x)); };
    l.eager.what = m->name();
    return l;
  }

  std::unordered_map<const Module*, torch::nn::AnyModule> callable_;
};

}  // namespace

Graph lower_generator(GeneratorImpl& generator) {
  torch::NoGradGuard no_grad;
  // Every generator's forward runs its registered children in order (resnet: model; inception:
  // down_sampling, features, up_sampling; unet: the outermost skip block).
  const auto self = std::dynamic_pointer_cast<GeneratorImpl>(generator.shared_from_this());
  try {
    return Lowerer().children(self, "");
  } catch (const NoCallableForward& e) {
    // An unknown block registered outside any Sequential has no forward to call alone: the
    // generator's own forward runs as one Eager layer.
    Layer l = leaf(LayerKind::Eager, "generator");
    l.eager.module = self;
    l.eager.forward = [self](torch::Tensor x) { return self->forward(std::move(x)); };
    l.eager.what = std::string("(") + e.what() + ")";
    return {l};
  }
}

void for_each_graph(Graph& graph, const std::function<void(Graph&)>& fn) {
  for (auto& layer : graph) {
    for (auto& body : layer.bodies) for_each_graph(body, fn);
  }
  fn(graph);
}

Graph lower(GeneratorImpl& generator, Consumer consumer) {
  Graph graph = lower_generator(generator);
  apply_passes(graph, consumer);
  return graph;
}

}  // namespace ganlite::nn::lowering
