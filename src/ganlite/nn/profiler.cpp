#include "ganlite/nn/profiler.h"

#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/instancenorm.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "ganlite/nn/forward_trace.h"
#include "ganlite/util/error.h"

namespace ganlite::nn {

namespace {

// "torch::nn::Conv2dImpl" -> "Conv2d", "ganlite::nn::SeparableConv2dImpl" -> "SeparableConv2d".
std::string short_type_name(const torch::nn::Module& m) {
  std::string name = m.name();
  const auto colon = name.rfind("::");
  if (colon != std::string::npos) name = name.substr(colon + 2);
  if (name.size() > 4 && name.compare(name.size() - 4, 4, "Impl") == 0) name.resize(name.size() - 4);
  return name;
}

int64_t own_parameters(const torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.named_parameters(false)) {
    if (p.value().defined()) n += p.value().numel();
  }
  return n;
}

class ProfileObserver : public ForwardObserver {
 public:
  ProfileObserver(const torch::nn::Module& root, const MacRules& rules) : rules_(rules) {
    for (const auto& item : root.named_modules("", false)) names_[item.value().get()] = item.key();
  }

  void on_leaf_output(const torch::nn::Module& layer, const torch::Tensor& output) override {
    LayerProfile row;
    const auto it = names_.find(&layer);
    row.name = it != names_.end() ? it->second : "?";
    row.type = short_type_name(layer);
    row.output_shape = output.sizes().vec();
    row.macs = layer_macs(layer, output, rules_);
    row.params = own_parameters(layer);
    profile.macs += row.macs;
    profile.layers.push_back(std::move(row));
  }

  ModelProfile profile;

 private:
  MacRules rules_;
  std::unordered_map<const torch::nn::Module*, std::string> names_;
};

std::string format_scaled(double value, int decimals, const char* suffix) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*f%s", decimals, value, suffix);
  return buffer;
}

}  // namespace

int64_t layer_macs(const torch::nn::Module& layer, const torch::Tensor& output, const MacRules& rules) {
  const int64_t out = output.numel();
  if (const auto* conv = dynamic_cast<const torch::nn::Conv2dImpl*>(&layer)) {
    const auto& o = conv->options;
    const auto k = *o.kernel_size();
    return out * (o.in_channels() / o.groups()) * k[0] * k[1];
  }
  if (const auto* conv = dynamic_cast<const torch::nn::ConvTranspose2dImpl*>(&layer)) {
    const auto& o = conv->options;
    const auto k = *o.kernel_size();
    return out * (o.in_channels() / o.groups()) * k[0] * k[1];
  }
  if (const auto* bn = dynamic_cast<const torch::nn::BatchNorm2dImpl*>(&layer)) {
    if (bn->options.track_running_stats() && !rules.count_batchnorm_with_running_stats) return 0;
    return bn->options.affine() ? out : 0;
  }
  if (const auto* in = dynamic_cast<const torch::nn::InstanceNorm2dImpl*>(&layer)) {
    return in->options.affine() ? out : 0;
  }
  return 0;
}

int64_t count_parameters(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters(true)) {
    if (p.defined()) n += p.numel();
  }
  return n;
}

ModelProfile profile_forward(torch::nn::Module& model, const std::function<void()>& run_forward,
                             const MacRules& rules) {
  const bool was_training = model.is_training();
  model.eval();
  ProfileObserver observer(model, rules);
  try {
    torch::NoGradGuard no_grad;
    ScopedForwardObserver scope(&observer);
    run_forward();
  } catch (...) {
    model.train(was_training);
    throw;
  }
  model.train(was_training);
  observer.profile.params = count_parameters(model);
  return std::move(observer.profile);
}

ModelProfile profile_generator(GeneratorImpl& generator, int64_t input_size, const MacRules& rules) {
  return profile_generator(generator, input_size, input_size, rules);
}

ModelProfile profile_generator(GeneratorImpl& generator, int64_t height, int64_t width, const MacRules& rules) {
  require(height > 0 && width > 0,
          "input size must be positive, got " + std::to_string(height) + "x" + std::to_string(width));
  const auto params = generator.parameters();
  const torch::Device device = params.empty() ? torch::Device(torch::kCPU) : params.front().device();
  const auto input = torch::zeros({1, generator.config().input_nc, height, width}, torch::TensorOptions().device(device));
  try {
    return profile_forward(generator, [&] { generator.forward(input); }, rules);
  } catch (const c10::Error& e) {
    throw Error("cannot run the " + generator.config().arch + " generator on a " + std::to_string(height) + "x" +
                std::to_string(width) + " input: " + e.what_without_backtrace());
  }
}

ModelProfile profile_generator(const ArchConfig& config, int64_t input_size, const torch::Device& device,
                               const MacRules& rules) {
  Generator generator = make_generator(config);
  generator->to(device);
  return profile_generator(*generator, input_size, rules);
}

nlohmann::json ModelProfile::to_json(bool with_layers) const {
  nlohmann::json j{{"macs", macs}, {"params", params}};
  if (with_layers) {
    auto rows = nlohmann::json::array();
    for (const auto& l : layers) {
      rows.push_back({{"name", l.name},
                      {"type", l.type},
                      {"output_shape", l.output_shape},
                      {"macs", l.macs},
                      {"params", l.params}});
    }
    j["layers"] = std::move(rows);
  }
  return j;
}

std::string format_macs(int64_t macs) {
  const double v = static_cast<double>(macs);
  if (v >= 1e9) return format_scaled(v / 1e9, 2, "G");
  if (v >= 1e6) return format_scaled(v / 1e6, 1, "M");
  if (v >= 1e3) return format_scaled(v / 1e3, 1, "k");
  return std::to_string(macs);
}

std::string format_params(int64_t params) { return format_scaled(static_cast<double>(params) / 1e6, 3, "M"); }

}  // namespace ganlite::nn
