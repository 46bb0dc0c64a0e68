#include "ganlite/compress/discriminator_prune.h"

#include <torch/torch.h>

#include <map>

#include "ganlite/io/checkpoint.h"
#include "ganlite/util/error.h"

namespace ganlite::compress {

namespace {

// A D kept in one Sequential (PatchGAN, pixel): a multi-scale D has several and is refused.
nn::DiscriminatorLayers layers_of(nn::DiscriminatorImpl& d) {
  const auto layers = d.layers();
  if (layers.seq == nullptr) {
    throw Error("cannot prune this discriminator: only discriminators kept in one Sequential (PatchGAN, pixel) "
                "are supported");
  }
  return layers;
}

// One conv of the Sequential and the layers after it up to the next conv (norm, LeakyReLU).
struct ConvLayer {
  size_t index;
  std::vector<size_t> followers;
};

std::vector<ConvLayer> conv_layers(torch::nn::SequentialImpl& seq) {
  std::vector<ConvLayer> layers;
  for (size_t i = 0; i < seq.size(); ++i) {
    if (seq.ptr(i)->as<torch::nn::Conv2dImpl>() != nullptr) {
      layers.push_back({i, {}});
    } else if (!layers.empty()) {
      layers.back().followers.push_back(i);
    }
  }
  return layers;
}

torch::Tensor score_of(torch::nn::SequentialImpl& seq, const ConvLayer& layer) {
  const auto& weight = seq.ptr(layer.index)->as<torch::nn::Conv2dImpl>()->weight;
  for (size_t f : layer.followers) {
    for (const auto& p : seq.ptr(f)->named_parameters(false)) {
      if (p.key() == "weight" && p.value().dim() == 1 && p.value().size(0) == weight.size(0)) {
        return p.value().detach().abs();
      }
    }
  }
  return weight.detach().abs().sum({1, 2, 3});
}

}  // namespace

std::vector<torch::Tensor> discriminator_channel_scores(nn::DiscriminatorImpl& trained) {
  auto* seq = layers_of(trained).seq;
  const auto layers = conv_layers(*seq);
  std::vector<torch::Tensor> scores;
  for (size_t i = 0; i + 1 < layers.size(); ++i) scores.push_back(score_of(*seq, layers[i]));
  return scores;
}

nn::Discriminator prune_discriminator(nn::DiscriminatorImpl& trained, const nn::DiscriminatorConfig& config,
                                      int new_ndf) {
  if (new_ndf < 1 || new_ndf > config.ndf) {
    throw UsageError("a pruned discriminator needs 1 <= ndf <= " + std::to_string(config.ndf) + ", got " +
                     std::to_string(new_ndf));
  }
  auto* seq = layers_of(trained).seq;
  const auto layers = conv_layers(*seq);
  const auto device = trained.parameters().front().device();

  // Per Sequential index: the kept output channels (convs and their followers) and kept inputs.
  std::map<size_t, torch::Tensor> keep_out, keep_in;
  torch::Tensor previous = torch::arange(config.input_nc, torch::TensorOptions().dtype(torch::kLong).device(device));
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto& conv = seq->ptr(layers[i].index)->as<torch::nn::Conv2dImpl>()->weight;
    const int64_t out = conv.size(0);
    torch::Tensor keep;
    if (i + 1 == layers.size()) {
      keep = torch::arange(out, previous.options());
    } else {
      // Widths are ndf * 2^k (capped at 8 ndf), so each keeps exactly new_ndf / ndf of them.
      const int64_t k = out / config.ndf * new_ndf;
      keep = std::get<0>(std::get<1>(torch::topk(score_of(*seq, layers[i]), k)).sort());
    }
    keep_in[layers[i].index] = previous;
    keep_out[layers[i].index] = keep;
    for (size_t f : layers[i].followers) keep_out[f] = keep;
    previous = keep;
  }

  io::NamedTensors sliced;
  for (const auto& [name, tensor] : io::state_dict(trained)) {
    // name = "<prefix>.<index>.<param>"
    const size_t first = name.find('.');
    const size_t second = name.find('.', first + 1);
    const size_t index = std::stoul(name.substr(first + 1, second - first - 1));
    const std::string param = name.substr(second + 1);
    torch::Tensor t = tensor.detach();
    if (t.dim() >= 1) t = t.index_select(0, keep_out.at(index));
    if (keep_in.count(index) && param == "weight") t = t.index_select(1, keep_in.at(index));
    sliced.emplace_back(name, t.contiguous());
  }
  nn::DiscriminatorConfig narrow = config;
  narrow.ndf = new_ndf;
  auto pruned = nn::make_discriminator(narrow);
  pruned->to(device);
  io::load_state_dict(*pruned, sliced);
  return pruned;
}

}  // namespace ganlite::compress
