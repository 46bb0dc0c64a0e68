// GauGAN's generators (nn/spade_generator.h, nn/inception_spade_generator.h) as ONNX: every block
// reads the label map at its own resolution, which the lowered layer list (one flowing tensor)
// does not express, so they are written here from the modules, in plain operators OpenCV 4.6
// imports: Conv (eval-mode BatchNorms folded in, float64), nearest Resize by constant scales
// (asymmetric / floor, PyTorch's nearest), BatchNormalization / InstanceNormalization without
// affine for SPADE's parameter-free norm, Mul, Add, Relu, LeakyRelu, Tanh. SPADE's 1 + gamma is
// folded into mlp_gamma's bias; CAT's gamma / beta halves become two convs per branch (no Slice).
#include "ganlite/io/onnx_export_graph.h"

#ifdef GANLITE_HAVE_ONNX
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/instancenorm.h>
#include <torch/torch.h>

#include <algorithm>
#include <map>

#include "ganlite/nn/inception_spade_generator.h"
#include "ganlite/nn/spade_generator.h"
#include "ganlite/util/error.h"

namespace ganlite::io::onnx_detail {

namespace {

using torch::nn::AnyModule;

struct ConvWeights {
  torch::Tensor weight, bias;  // bias always defined
  int64_t groups = 1, padding = 0;
};

ConvWeights conv_of(const torch::nn::Module& m) {
  const auto* conv = dynamic_cast<const torch::nn::Conv2dImpl*>(&m);
  if (conv == nullptr) throw Error("ONNX export of a SPADE generator met a " + m.name() + " where a Conv2d belongs");
  ConvWeights c;
  c.weight = conv->weight.detach().to(torch::kFloat64);
  c.bias = conv->options.bias() ? conv->bias.detach().to(torch::kFloat64) : torch::zeros({c.weight.size(0)}, torch::kFloat64);
  c.groups = conv->options.groups();
  c.padding = (*conv->options.kernel_size())[0] / 2;
  return c;
}

// A norm's eval-mode map y = scale x + shift when it has one (BatchNorm); false for an
// InstanceNorm (its statistics are the input's).
bool batchnorm_map(const torch::nn::Module& m, torch::Tensor& scale, torch::Tensor& shift) {
  const auto* bn = dynamic_cast<const torch::nn::BatchNorm2dImpl*>(&m);
  if (bn == nullptr) return false;
  const auto var = bn->running_var.detach().to(torch::kFloat64), mean = bn->running_mean.detach().to(torch::kFloat64);
  scale = 1.0 / torch::sqrt(var + bn->options.eps());
  shift = -mean * scale;
  if (bn->options.affine()) {
    scale = scale * bn->weight.detach().to(torch::kFloat64);
    shift = shift * bn->weight.detach().to(torch::kFloat64) + bn->bias.detach().to(torch::kFloat64);
  }
  return true;
}

class SpadeWriter {
 public:
  SpadeWriter(GraphBuilder& b, const Value& seg) : b_(b), seg_(seg) {}

  Value conv(const ConvWeights& c, const Value& x, const std::string& name) {
    std::string y;
    onnx::NodeProto* n = b_.node("Conv", {x.name, b_.initializer(name + ".weight", c.weight), b_.initializer(name + ".bias", c.bias)},
                                 name, &y);
    GraphBuilder::attr(n, "kernel_shape", std::vector<int64_t>{c.weight.size(2), c.weight.size(3)});
    GraphBuilder::attr(n, "pads", std::vector<int64_t>{c.padding, c.padding, c.padding, c.padding});
    GraphBuilder::attr(n, "group", c.groups);
    return {y, c.weight.size(0)};
  }

  // conv then norm: a BatchNorm folded into the conv, an InstanceNorm written after it.
  Value conv_norm(const torch::nn::Module& conv_module, const torch::nn::Module& norm, const Value& x,
                  const std::string& name) {
    ConvWeights c = conv_of(conv_module);
    torch::Tensor scale, shift;
    if (batchnorm_map(norm, scale, shift)) {
      c.weight = c.weight * scale.view({-1, 1, 1, 1});
      c.bias = c.bias * scale + shift;
      return conv(c, x, name);
    }
    return instance_norm(norm, conv(c, x, name), name + ".norm");
  }

  Value instance_norm(const torch::nn::Module& m, const Value& x, const std::string& name) {
    const auto* in = dynamic_cast<const torch::nn::InstanceNorm2dImpl*>(&m);
    require(in != nullptr, "ONNX export of a SPADE generator met an unexpected norm " + m.name());
    const int64_t c = x.channels;
    const bool affine = in->options.affine();
    std::string y;
    onnx::NodeProto* n = b_.node(
        "InstanceNormalization",
        {x.name, b_.initializer(name + ".weight", affine ? in->weight.detach() : torch::ones({c})),
         b_.initializer(name + ".bias", affine ? in->bias.detach() : torch::zeros({c}))},
        name, &y);
    GraphBuilder::attr(n, "epsilon", static_cast<float>(in->options.eps()));
    return {y, c};
  }

  // A norm on its own (SPADE's parameter-free norm, CAT's shortcut norm).
  Value norm(const torch::nn::Module& m, const Value& x, const std::string& name) {
    torch::Tensor scale, shift;
    if (!batchnorm_map(m, scale, shift)) return instance_norm(m, x, name);
    std::string y;
    const int64_t c = x.channels;
    onnx::NodeProto* n = b_.node("BatchNormalization",
                                 {x.name, b_.initializer(name + ".scale", scale), b_.initializer(name + ".shift", shift),
                                  b_.initializer(name + ".mean", torch::zeros({c})), b_.initializer(name + ".var", torch::ones({c}))},
                                 name, &y);
    GraphBuilder::attr(n, "epsilon", 0.0f);
    return {y, c};
  }

  Value unary(const std::string& op, const Value& x, const std::string& name, double slope = 0.0) {
    std::string y;
    onnx::NodeProto* n = b_.node(op, {x.name}, name, &y);
    if (op == "LeakyRelu") GraphBuilder::attr(n, "alpha", static_cast<float>(slope));
    return {y, x.channels};
  }

  Value binary(const std::string& op, const Value& a, const Value& b, const std::string& name) {
    std::string y;
    b_.node(op, {a.name, b.name}, name, &y);
    return {y, std::max(a.channels, b.channels)};
  }

  // Nearest resize by a constant factor per side (PyTorch's nearest: source = floor(dst / scale)).
  Value resize(const Value& x, double factor, const std::string& name) {
    std::string y;
    onnx::NodeProto* n = b_.node("Resize",
                                 {x.name, b_.initializer(name + ".roi", torch::zeros({0})),
                                  b_.initializer(name + ".scales", torch::tensor({1.0f, 1.0f, float(factor), float(factor)}))},
                                 name, &y);
    GraphBuilder::attr(n, "mode", std::string("nearest"));
    GraphBuilder::attr(n, "coordinate_transformation_mode", std::string("asymmetric"));
    GraphBuilder::attr(n, "nearest_mode", std::string("floor"));
    return {y, x.channels};
  }

  // The label map at 1 / 2^down of the input side, made once per resolution.
  Value seg_at(int down) {
    if (down == 0) return seg_;
    auto it = seg_by_level_.find(down);
    if (it != seg_by_level_.end()) return it->second;
    const Value v = resize(seg_, 1.0 / double(int64_t{1} << down), "seg_down" + std::to_string(down));
    seg_by_level_.emplace(down, v);
    return v;
  }

  // NVlabs SPADE: norm(x) * gamma' + beta, gamma' = mlp_gamma with 1 added to its bias.
  Value spade(nn::SpadeImpl& s, const Value& x, int down, const std::string& name) {
    const Value normalized = norm(*s.param_free_norm.ptr(), x, name + ".param_free_norm");
    const Value actv = unary("Relu", conv(conv_of(*s.mlp_shared[0]), seg_at(down), name + ".mlp_shared.0"), name + ".mlp_shared.1");
    ConvWeights gamma = conv_of(*s.mlp_gamma.ptr());
    gamma.bias = gamma.bias + 1.0;
    const Value g = conv(gamma, actv, name + ".mlp_gamma");
    const Value beta = conv(conv_of(*s.mlp_beta.ptr()), actv, name + ".mlp_beta");
    return binary("Add", binary("Mul", normalized, g, name + ".scale"), beta, name + ".shift");
  }

  Value spade_block(nn::SpadeResnetBlockImpl& blk, const Value& x, int down, const std::string& name) {
    Value skip = x;
    if (blk.learned_shortcut) skip = conv(conv_of(*blk.conv_s.ptr()), spade(*blk.norm_s, x, down, name + ".norm_s"), name + ".conv_s");
    Value dx = unary("LeakyRelu", spade(*blk.norm_0, x, down, name + ".norm_0"), name + ".actvn_0", 0.2);
    dx = conv(conv_of(*blk.conv_0.ptr()), dx, name + ".conv_0");
    dx = unary("LeakyRelu", spade(*blk.norm_1, dx, down, name + ".norm_1"), name + ".actvn_1", 0.2);
    dx = conv(conv_of(*blk.conv_1.ptr()), dx, name + ".conv_1");
    return binary("Add", skip, dx, name + ".add");
  }

  // A CAT ConvNormAct; `slope` < 0: ReLU.
  Value conv_norm_act(nn::ConvNormActImpl& m, const Value& x, const std::string& name, double slope) {
    const Value y = conv_norm(*m.conv.ptr(), *m.norm.ptr(), x, name);
    return slope < 0 ? unary("Relu", y, name + ".active") : unary("LeakyRelu", y, name + ".active", slope);
  }

  // The last conv of a CAT SPADE branch split into its gamma (bias + 1 once) and beta halves.
  void spade_branch_out(const torch::nn::Module& m, const Value& h, int64_t c, const std::string& name,
                        std::vector<Value>& gammas, std::vector<Value>& betas) {
    const ConvWeights all = conv_of(m);
    ConvWeights g = all, b = all;
    g.weight = all.weight.narrow(0, 0, c), g.bias = all.bias.narrow(0, 0, c);
    b.weight = all.weight.narrow(0, c, c), b.bias = all.bias.narrow(0, c, c);
    if (gammas.empty()) g.bias = g.bias + 1.0;
    gammas.push_back(conv(g, h, name + ".gamma"));
    betas.push_back(conv(b, h, name + ".beta"));
  }

  Value sum(const std::vector<Value>& values, const std::string& name) {
    Value s = values.front();
    for (size_t i = 1; i < values.size(); ++i) s = binary("Add", s, values[i], name + std::to_string(i));
    return s;
  }

  Value inception_spade(nn::InceptionSpadeImpl& s, const Value& x, int down, const std::string& name) {
    const Value normalized = norm(*s.param_free_norm.ptr(), x, name + ".param_free_norm");
    if (s.res_branches.empty() && s.dw_branches.empty()) return normalized;
    const Value seg = seg_at(down);
    std::vector<Value> gammas, betas;
    for (size_t j = 0; j < s.res_branches.size(); ++j) {
      auto& br = s.res_branches[j];
      const std::string p = name + ".res_ops." + std::to_string(j);
      const Value h = conv_norm_act(*br[0]->as<nn::ConvNormActImpl>(), seg, p + ".0", -1);
      spade_branch_out(*br[1], h, s.norm_nc, p + ".1", gammas, betas);
    }
    for (size_t j = 0; j < s.dw_branches.size(); ++j) {
      auto& br = s.dw_branches[j];
      const std::string p = name + ".dw_ops." + std::to_string(j);
      Value h = conv_norm_act(*br[0]->as<nn::ConvNormActImpl>(), seg, p + ".0", -1);
      h = conv_norm_act(*br[1]->as<nn::ConvNormActImpl>(), h, p + ".1", -1);
      spade_branch_out(*br[2], h, s.norm_nc, p + ".2", gammas, betas);
    }
    const Value scaled = binary("Mul", normalized, sum(gammas, name + ".gamma_sum"), name + ".scale");
    return binary("Add", scaled, sum(betas, name + ".beta_sum"), name + ".shift");
  }

  Value inception_block(nn::SpadeInvertedResidualChannelsImpl& blk, const Value& x, int down, const std::string& name) {
    Value skip = x;
    if (blk.shortcut) {
      skip = norm(*blk.shortcut[0], x, name + ".shortcut.0");
      skip = conv(conv_of(*blk.shortcut[1]->as<nn::ConvOnlyImpl>()->conv.ptr()), skip, name + ".shortcut.1");
    }
    if (blk.res_branches.empty() && blk.dw_branches.empty()) return skip;
    const Value a = unary("LeakyRelu", inception_spade(*blk.spade, x, down, name + ".spade"), name + ".active", 0.01);
    std::vector<Value> outs;
    for (size_t j = 0; j < blk.res_branches.size(); ++j) {
      auto& br = blk.res_branches[j];
      const std::string p = name + ".res_ops." + std::to_string(j);
      const Value h = conv_norm_act(*br[0]->as<nn::ConvNormActImpl>(), a, p + ".0", 0.01);
      outs.push_back(conv(conv_of(*br[1]->as<nn::ConvOnlyImpl>()->conv.ptr()), h, p + ".1"));
    }
    for (size_t j = 0; j < blk.dw_branches.size(); ++j) {
      auto& br = blk.dw_branches[j];
      const std::string p = name + ".dw_ops." + std::to_string(j);
      Value h = conv_norm_act(*br[0]->as<nn::ConvNormActImpl>(), a, p + ".0", 0.01);
      h = conv_norm_act(*br[1]->as<nn::ConvNormActImpl>(), h, p + ".1", 0.01);
      outs.push_back(conv(conv_of(*br[2]->as<nn::ConvOnlyImpl>()->conv.ptr()), h, p + ".2"));
    }
    return binary("Add", sum(outs, name + ".sum"), skip, name + ".add");
  }

 private:
  GraphBuilder& b_;
  Value seg_;
  std::map<int, Value> seg_by_level_;
};

// Levels below the input side of each block's input (fc at 6: 1/64).
template <typename Block, typename WriteBlock>
Value write_trunk(SpadeWriter& w, Value x, std::vector<Block>& blocks, const WriteBlock& write_block) {
  int down = 6;
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (nn::kSpadeBlocks[i].upsample_before) {
      x = w.resize(x, 2.0, std::string(nn::kSpadeBlocks[i].name) + ".up");
      --down;
    }
    x = write_block(*blocks[i], x, down, nn::kSpadeBlocks[i].name);
  }
  return x;
}

}  // namespace

bool write_spade_generator(GraphBuilder& builder, nn::GeneratorImpl& generator, const Value& input, Value* output) {
  SpadeWriter w(builder, input);
  Value x;
  if (auto* g = dynamic_cast<nn::SpadeGeneratorImpl*>(&generator)) {
    x = w.conv(conv_of(*g->fc.ptr()), w.seg_at(6), "fc");
    x = write_trunk(w, x, g->blocks, [&w](auto& blk, const Value& v, int down, const std::string& name) {
      return w.spade_block(blk, v, down, name);
    });
    x = w.conv(conv_of(*g->conv_img.ptr()), w.unary("LeakyRelu", x, "conv_img.actvn", 0.2), "conv_img");
  } else if (auto* g = dynamic_cast<nn::InceptionSpadeGeneratorImpl*>(&generator)) {
    x = w.conv_norm(*g->fc.ptr(), *g->fc_norm.ptr(), w.seg_at(6), "fc");
    x = write_trunk(w, x, g->blocks, [&w](auto& blk, const Value& v, int down, const std::string& name) {
      return w.inception_block(blk, v, down, name);
    });
    x = w.conv(conv_of(*g->conv_img.ptr()), w.unary("LeakyRelu", x, "conv_img.actvn", 0.2), "conv_img");
  } else {
    return false;
  }
  *output = w.unary("Tanh", x, "tanh");
  return true;
}

}  // namespace ganlite::io::onnx_detail

#endif  // GANLITE_HAVE_ONNX
