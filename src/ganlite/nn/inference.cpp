#include "ganlite/nn/inference.h"

#include <torch/torch.h>

#include <chrono>
#include <fstream>

#include "ganlite/nn/inference_steps.h"
#include "ganlite/nn/lowering.h"
#include "ganlite/util/error.h"

namespace ganlite::nn {

const std::vector<std::string>& valid_precisions() {
  static const std::vector<std::string> v{"fp32", "bf16"};
  return v;
}

Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::fp32;
  if (name == "bf16") return Precision::bf16;
  throw_bad_choice("precision", name, valid_precisions());
}

std::string precision_name(Precision precision) { return precision == Precision::bf16 ? "bf16" : "fp32"; }

const std::vector<std::string>& valid_conv_kernels() {
  static const std::vector<std::string> v{"auto", "onednn", "direct"};
  return v;
}

ConvKernels parse_conv_kernels(const std::string& name) {
  if (name == "auto") return ConvKernels::automatic;
  if (name == "onednn") return ConvKernels::onednn;
  if (name == "direct") return ConvKernels::direct;
  throw_bad_choice("kernels", name, valid_conv_kernels());
}

std::string conv_kernels_name(ConvKernels kernels) {
  return kernels == ConvKernels::onednn ? "onednn" : kernels == ConvKernels::direct ? "direct" : "auto";
}

bool bf16_is_fast(const torch::Device& device) {
  if (!device.is_cpu()) return true;
  static const bool fast = [] {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("flags", 0) == 0) {
        return line.find(" avx512_bf16") != std::string::npos || line.find(" amx_bf16") != std::string::npos;
      }
    }
    return false;
  }();
  return fast;
}

bool bf16_convs_run(const torch::Device& device) {
  if (!device.is_cpu()) return true;
  static const bool runs = [] {
    try {
      c10::InferenceMode guard;
      const auto options = torch::TensorOptions().dtype(torch::kBFloat16);
      const auto x = torch::ones({1, 16, 8, 8}, options).contiguous(at::MemoryFormat::ChannelsLast);
      const auto w = torch::ones({16, 16, 3, 3}, options).contiguous(at::MemoryFormat::ChannelsLast);
      (void)torch::conv2d(x, w);
      return true;
    } catch (const std::exception&) {  // dnnl::error, which is no c10::Error
      return false;
    }
  }();
  return runs;
}

struct InferenceRunner::Impl {
  ArchConfig config;
  InferenceOptions options;
  torch::Device device{torch::kCPU};
  torch::ScalarType dtype = torch::kFloat;
  inference_detail::Plan plan;
};

InferenceRunner::InferenceRunner(GeneratorImpl& generator, InferenceOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->config = generator.config();
  impl_->options = options;
  const auto params = generator.parameters();
  if (!params.empty()) impl_->device = params.front().device();
  impl_->dtype = options.precision == Precision::bf16 ? torch::kBFloat16 : torch::kFloat;
  if (options.precision == Precision::bf16 && !bf16_convs_run(impl_->device)) {
    throw UsageError("--precision bf16 is unavailable here: oneDNN refuses bf16 convs (is ONEDNN_MAX_CPU_ISA or "
                     "DNNL_MAX_CPU_ISA set below AVX512_CORE?); use --precision fp32");
  }
  torch::NoGradGuard no_grad;
  const auto graph = lowering::lower(generator, lowering::Consumer::runner);
  impl_->plan =
      inference_detail::compile(graph, {impl_->dtype, options.channels_last, options.kernels, impl_->device.is_cpu()});
}

InferenceRunner::~InferenceRunner() = default;
InferenceRunner::InferenceRunner(InferenceRunner&&) noexcept = default;
InferenceRunner& InferenceRunner::operator=(InferenceRunner&&) noexcept = default;

torch::Tensor InferenceRunner::forward(const torch::Tensor& x) const {
  require(x.dim() == 4 && x.size(1) == impl_->config.input_nc,
          "inference input must be [N, " + std::to_string(impl_->config.input_nc) + ", H, W]");
  c10::InferenceMode guard;
  auto in = x.to(impl_->device, impl_->dtype);
  in = impl_->options.channels_last ? in.contiguous(at::MemoryFormat::ChannelsLast) : in.contiguous();
  auto y = inference_detail::run_plan(impl_->plan, in);
  return y.to(torch::kFloat).contiguous();
}

const ArchConfig& InferenceRunner::config() const { return impl_->config; }
const InferenceOptions& InferenceRunner::options() const { return impl_->options; }
torch::Device InferenceRunner::device() const { return impl_->device; }
size_t InferenceRunner::num_steps() const { return impl_->plan.size(); }

std::vector<StepKind> InferenceRunner::step_kinds() const {
  std::vector<StepKind> kinds;
  for (const auto& step : impl_->plan) kinds.push_back(step.kind);
  return kinds;
}

std::vector<StepKind> InferenceRunner::all_step_kinds() const { return inference_detail::kinds_of(impl_->plan); }

std::vector<std::pair<std::string, double>> InferenceRunner::profile_steps(const torch::Tensor& x) const {
  c10::InferenceMode guard;
  auto y = x.to(impl_->device, impl_->dtype);
  y = impl_->options.channels_last ? y.contiguous(at::MemoryFormat::ChannelsLast) : y.contiguous();
  std::vector<std::pair<std::string, double>> times;
  for (const auto& step : impl_->plan) {
    const auto start = std::chrono::steady_clock::now();
    y = step.fn(std::move(y));
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    times.emplace_back(step.text.substr(0, step.text.find('\n')), ms);
  }
  return times;
}

std::vector<std::string> InferenceRunner::describe() const {
  std::vector<std::string> lines;
  for (const auto& step : impl_->plan) lines.push_back(step.text);
  return lines;
}

}  // namespace ganlite::nn
