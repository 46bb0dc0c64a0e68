// Mixed-precision training (`--precision fp32|bf16|fp16`, issue 17), as PyTorch's automatic mixed
// precision: the parameters and optimizer state stay fp32 (the master weights), autocast casts the
// inputs of each matmul-like op (convs, linear) to bf16 / fp16 inside an AutocastRegion, and the
// losses are computed in fp32 on outputs cast back (to_fp32). fp16's narrow exponent range
// (gradients below 2^-24 flush to zero) needs loss scaling: LossScaler is
// torch.cuda.amp.GradScaler, which LibTorch's C++ API does not have. fp32 runs none of this: the
// region is a no-op and the scaler steps the optimizer as before, bit for bit.
#pragma once
#include <torch/optim/optimizer.h>
#include <torch/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ganlite::train {

enum class TrainPrecision { fp32, bf16, fp16 };

inline constexpr const char* kDefaultPrecision = "fp32";

// "fp32" | "bf16" | "fp16"; UsageError naming `precision` and the valid values otherwise.
TrainPrecision parse_train_precision(const std::string& name);
std::string train_precision_name(TrainPrecision precision);
const std::vector<std::string>& valid_train_precisions();
// UsageError naming --precision when `precision` cannot train on `device`: fp16 needs CUDA (CPU
// autocast has no fp16 kernels), bf16 on a CPU needs native bf16 (avx512_bf16 or amx_bf16;
// without it LibTorch emulates bf16, slower than fp32) and oneDNN allowed to run bf16 convs.
void check_precision_supported(TrainPrecision precision, const torch::Device& device);

// For a task whose step does not implement mixed precision yet: UsageError naming --precision
// and `what` unless `precision` is fp32 (a bad name: the valid ones).
void require_fp32_precision(const std::string& precision, const std::string& what);

// RAII: autocast to the precision's dtype on `device`'s kind while alive, as `with torch.autocast`
// (its __enter__ / __exit__: the previous state comes back and the cache of casted weights is
// cleared when the outermost region ends, so an optimizer step after it never sees stale copies).
// fp32: does nothing. Keep backward passes and optimizer steps outside, as PyTorch advises.
class AutocastRegion {
 public:
  AutocastRegion(TrainPrecision precision, const torch::Device& device);
  ~AutocastRegion();
  AutocastRegion(const AutocastRegion&) = delete;
  AutocastRegion& operator=(const AutocastRegion&) = delete;

 private:
  bool active_ = false;
  c10::DeviceType device_type_ = c10::DeviceType::CPU;
  bool was_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kFloat;
};

// `t` as fp32 for a loss when it is bf16 / fp16; any other tensor as it is (fp32 runs are
// unchanged, float64 ones stay float64).
torch::Tensor to_fp32(const torch::Tensor& t);

// Whether a step whose loss is not finite ends the run. fp32 and bf16: always (the trainer stops
// with its message). fp16: the loss scaler skipped that step and backed off, as GradScaler does,
// so training goes on; only `limit` such steps in a row (a scale that cannot recover) end it.
class NonFiniteLossGuard {
 public:
  explicit NonFiniteLossGuard(TrainPrecision precision, int limit = 50) : precision_(precision), limit_(limit) {}
  // Call once per step; true when the run must stop.
  bool stop(bool all_losses_finite) {
    if (all_losses_finite) {
      in_a_row_ = 0;
      return false;
    }
    return precision_ != TrainPrecision::fp16 || ++in_a_row_ >= limit_;
  }

 private:
  TrainPrecision precision_;
  int limit_;
  int in_a_row_ = 0;
};

// torch.cuda.amp.GradScaler's defaults (torch/cuda/amp/grad_scaler.py).
struct LossScalerOptions {
  double init_scale = 65536.0;  // 2^16
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
};

// Dynamic loss scaling, GradScaler's algorithm: backward runs on loss x scale, so small
// gradients survive fp16; step() unscales an optimizer's gradients (x 1/scale) and steps it only
// when all of them are finite; update(), once per iteration after every step(), halves the scale
// if any step this iteration met inf/nan and otherwise doubles it after growth_interval
// consecutive good iterations (ATen's _amp_update_scale_). Disabled (fp32, bf16: bf16 has fp32's
// exponent range): scale() returns the loss itself and step() just steps.
class LossScaler {
 public:
  explicit LossScaler(bool enabled, LossScalerOptions options = {});

  bool enabled() const { return enabled_; }
  torch::Tensor scale(const torch::Tensor& loss) const;
  // Unscales and steps `optimizer`; false when the step was skipped for inf/nan gradients.
  bool step(torch::optim::Optimizer& optimizer);
  void update();

  double scale_value() const { return scale_; }
  int64_t growth_tracker() const { return growth_tracker_; }
  int64_t skipped_steps() const { return skipped_steps_; }

  // Kept in the training checkpoint's metadata (only when enabled: other runs' checkpoints are
  // as before). load_state ignores absent keys (a checkpoint written without scaling).
  void save_state(std::map<std::string, std::string>& metadata) const;
  void load_state(const std::map<std::string, std::string>& metadata);

 private:
  bool enabled_;
  LossScalerOptions options_;
  double scale_;
  int64_t growth_tracker_ = 0;
  int64_t skipped_steps_ = 0;
  bool found_inf_this_iteration_ = false;
};

// What a task's step uses: the precision, its autocast regions and its scaler (enabled for fp16).
class MixedPrecision {
 public:
  // Checks the precision is supported on `device` (check_precision_supported).
  MixedPrecision(const std::string& precision, const torch::Device& device);

  TrainPrecision precision() const { return precision_; }
  AutocastRegion autocast() const { return AutocastRegion(precision_, device_); }
  LossScaler& scaler() { return scaler_; }
  const LossScaler& scaler() const { return scaler_; }

 private:
  TrainPrecision precision_;
  torch::Device device_;
  LossScaler scaler_;
};

}  // namespace ganlite::train
