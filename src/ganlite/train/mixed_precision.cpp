#include "ganlite/train/mixed_precision.h"

#include <torch/torch.h>

#include <cmath>
#include <cstdio>

#include "ganlite/nn/inference.h"
#include "ganlite/torch_compat.h"
#include "ganlite/util/error.h"

namespace ganlite::train {

namespace {

constexpr const char* kScaleKey = "loss_scale";
constexpr const char* kGrowthTrackerKey = "loss_scale_growth_tracker";

at::ScalarType autocast_dtype_of(TrainPrecision precision) {
  return precision == TrainPrecision::fp16 ? at::kHalf : at::kBFloat16;
}

double parse_scaler_field(const std::map<std::string, std::string>& metadata, const char* key) {
  const auto& text = metadata.at(key);
  try {
    size_t used = 0;
    const double v = std::stod(text, &used);
    if (used == text.size() && std::isfinite(v) && v >= 0) return v;
  } catch (const std::exception&) {
  }
  throw Error(std::string("training checkpoint: metadata '") + key + "' is '" + text +
              "', not a finite number >= 0");
}

}  // namespace

TrainPrecision parse_train_precision(const std::string& name) {
  if (name == "fp32") return TrainPrecision::fp32;
  if (name == "bf16") return TrainPrecision::bf16;
  if (name == "fp16") return TrainPrecision::fp16;
  throw_bad_choice("precision", name, valid_train_precisions());
}

std::string train_precision_name(TrainPrecision precision) {
  switch (precision) {
    case TrainPrecision::bf16: return "bf16";
    case TrainPrecision::fp16: return "fp16";
    default: return "fp32";
  }
}

const std::vector<std::string>& valid_train_precisions() {
  static const std::vector<std::string> v{"fp32", "bf16", "fp16"};
  return v;
}

void check_precision_supported(TrainPrecision precision, const torch::Device& device) {
  if (precision == TrainPrecision::fp32 || device.is_cuda()) return;
  if (!device.is_cpu()) {
    throw UsageError("--precision " + train_precision_name(precision) + " trains on CPU or CUDA devices only, not '" +
                     device.str() + "'; use --precision fp32");
  }
  if (precision == TrainPrecision::fp16) {
    throw UsageError("--precision fp16 needs a CUDA device (--device cuda): CPU autocast has no fp16 kernels; "
                     "on a CPU use --precision bf16 (with native bf16) or fp32");
  }
  if (!nn::bf16_is_fast(device)) {
    throw UsageError("--precision bf16 needs a CPU with native bf16 (avx512_bf16 or amx_bf16 in /proc/cpuinfo); "
                     "this one would emulate it, slower than fp32: use --precision fp32");
  }
  if (!nn::bf16_convs_run(device)) {
    throw UsageError("--precision bf16 is unavailable here: oneDNN refuses bf16 convs (is ONEDNN_MAX_CPU_ISA or "
                     "DNNL_MAX_CPU_ISA set below AVX512_CORE?); use --precision fp32");
  }
}

void require_fp32_precision(const std::string& precision, const std::string& what) {
  if (parse_train_precision(precision) == TrainPrecision::fp32) return;
  throw UsageError("--precision " + precision + " is not implemented for " + what + " yet: use --precision fp32");
}

AutocastRegion::AutocastRegion(TrainPrecision precision, const torch::Device& device)
    : active_(precision != TrainPrecision::fp32), device_type_(device.type()) {
  if (!active_) return;
  was_enabled_ = compat::autocast_enabled(device_type_);
  previous_dtype_ = compat::autocast_dtype(device_type_);
  compat::set_autocast_dtype(device_type_, autocast_dtype_of(precision));
  compat::set_autocast_enabled(device_type_, true);
  at::autocast::increment_nesting();
}

AutocastRegion::~AutocastRegion() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  compat::set_autocast_enabled(device_type_, was_enabled_);
  compat::set_autocast_dtype(device_type_, previous_dtype_);
}

torch::Tensor to_fp32(const torch::Tensor& t) {
  // Only the reduced types: float64 (the parity tests' step) stays float64.
  const auto type = t.scalar_type();
  return type == torch::kBFloat16 || type == torch::kHalf ? t.to(torch::kFloat) : t;
}

LossScaler::LossScaler(bool enabled, LossScalerOptions options)
    : enabled_(enabled), options_(options), scale_(options.init_scale) {
  require(options_.init_scale > 0 && options_.growth_factor > 1 && options_.backoff_factor > 0 &&
              options_.backoff_factor < 1 && options_.growth_interval > 0,
          "loss scaler: init_scale > 0, growth_factor > 1, backoff_factor in (0, 1) and growth_interval > 0");
}

torch::Tensor LossScaler::scale(const torch::Tensor& loss) const {
  if (!enabled_) return loss;
  return to_fp32(loss) * scale_;
}

bool LossScaler::step(torch::optim::Optimizer& optimizer) {
  if (!enabled_) {
    optimizer.step();
    return true;
  }
  // Unscale in fp32 (the grads are fp32: the parameters are), then one host sync for the check.
  const double inverse = 1.0 / scale_;
  torch::Tensor non_finite;
  {
    torch::NoGradGuard no_grad;
    for (const auto& group : optimizer.param_groups()) {
      for (const auto& p : group.params()) {
        auto grad = p.grad();
        if (!grad.defined()) continue;
        grad.mul_(inverse);
        const auto bad = torch::logical_not(torch::isfinite(grad)).any();
        non_finite = non_finite.defined() ? torch::logical_or(non_finite, bad) : bad;
      }
    }
  }
  const bool found_inf = non_finite.defined() && non_finite.item<bool>();
  if (found_inf) {
    found_inf_this_iteration_ = true;
    ++skipped_steps_;
    return false;
  }
  optimizer.step();
  return true;
}

void LossScaler::update() {
  if (!enabled_) return;
  if (found_inf_this_iteration_) {
    scale_ *= options_.backoff_factor;
    growth_tracker_ = 0;
  } else if (++growth_tracker_ == options_.growth_interval) {
    scale_ *= options_.growth_factor;
    growth_tracker_ = 0;
  }
  found_inf_this_iteration_ = false;
}

void LossScaler::save_state(std::map<std::string, std::string>& metadata) const {
  if (!enabled_) return;
  char text[64];
  std::snprintf(text, sizeof(text), "%.17g", scale_);
  metadata[kScaleKey] = text;
  metadata[kGrowthTrackerKey] = std::to_string(growth_tracker_);
}

void LossScaler::load_state(const std::map<std::string, std::string>& metadata) {
  if (!enabled_ || !metadata.count(kScaleKey)) return;
  const double scale = parse_scaler_field(metadata, kScaleKey);
  if (!(scale > 0)) throw Error(std::string("training checkpoint: metadata '") + kScaleKey + "' must be > 0");
  scale_ = scale;
  growth_tracker_ = metadata.count(kGrowthTrackerKey)
                        ? static_cast<int64_t>(parse_scaler_field(metadata, kGrowthTrackerKey))
                        : 0;
}

MixedPrecision::MixedPrecision(const std::string& precision, const torch::Device& device)
    : precision_(parse_train_precision(precision)),
      device_(device),
      scaler_(precision_ == TrainPrecision::fp16) {
  check_precision_supported(precision_, device_);
}

}  // namespace ganlite::train
