// Every difference between the LibTorch versions ganlite builds against (Debian's 1.13,
// pip's 2.x with CUDA) lives here, so the rest of the code is version-free.
#pragma once
#include <ATen/autocast_mode.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <sstream>
#include <string>
#include <type_traits>
#include <variant>

#define GANLITE_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

// c10d (train/distributed.cpp, which includes its headers): LibTorch 2.0 turned ProcessGroupGloo
// and ProcessGroupNCCL into c10d::Backend's behind a dispatching ProcessGroup; in 1.13 they are
// ProcessGroups themselves. Both bases declare the same collectives.
#if GANLITE_TORCH_AT_LEAST(2, 0)
#define GANLITE_C10D_GROUP_BASE c10d::Backend
#else
#define GANLITE_C10D_GROUP_BASE c10d::ProcessGroup
#endif

namespace ganlite::compat {

inline std::string torch_version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

// Waits for queued kernels on `device`, so wall-clock timings measure finished work.
inline void synchronize(const torch::Device& device) {
  if (!device.is_cuda()) return;
#if GANLITE_TORCH_AT_LEAST(2, 0)
  torch::cuda::synchronize(device.index());
#else
  // 1.13 has no public C++ synchronize; a device-to-host copy waits for the queue.
  torch::zeros({1}, torch::TensorOptions().device(device)).cpu();
#endif
}

// The alternative `T` held by a variant of LibTorch's options (a conv's padding or
// padding_mode), or nullptr. LibTorch up to 2.1 declares them as c10::variant, its own
// backport with its own get_if; 2.2 moved them to std::variant (pytorch PRs 103675 to 110423).
// `get_if` is found by argument-dependent lookup in the variant's namespace, so one definition
// serves every version without a version bound.
template <typename T, typename Variant>
const T* variant_get_if(const Variant& v) {
  using std::get_if;  // makes `get_if<T>` parse as a template call; ADL adds c10::get_if
  return get_if<T>(&v);
}

template <typename T, typename Variant>
bool variant_holds(const Variant& v) {
  return variant_get_if<T>(v) != nullptr;
}

// The key of a parameter's entry in Optimizer::state(): LibTorch 1.13 keys by the address of the
// parameter's TensorImpl printed as a string (c10::guts::to_string, gone in 2.x), 2.x by the
// address itself (a void*). Told apart by the map's key type, not by a version bound.
using OptimizerStateKey =
    typename std::decay_t<decltype(std::declval<const torch::optim::Optimizer&>().state())>::key_type;

template <typename Key = OptimizerStateKey>
Key optimizer_state_key(const torch::Tensor& param) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream text;  // as c10::guts::to_string: operator<< of the pointer
    text << param.unsafeGetTensorImpl();
    return text.str();
  } else {
    return param.unsafeGetTensorImpl();
  }
}

// Autocast (train/mixed_precision.h). LibTorch up to 2.3 has one setter per device kind
// (set_enabled for CUDA, set_cpu_enabled, set_autocast_cpu_dtype / set_autocast_gpu_dtype); 2.4
// replaced them by setters taking the device type (pytorch PR 124359) and deprecated the others.
#if GANLITE_TORCH_AT_LEAST(2, 4)
inline bool autocast_enabled(c10::DeviceType type) { return at::autocast::is_autocast_enabled(type); }
inline void set_autocast_enabled(c10::DeviceType type, bool on) { at::autocast::set_autocast_enabled(type, on); }
inline at::ScalarType autocast_dtype(c10::DeviceType type) { return at::autocast::get_autocast_dtype(type); }
inline void set_autocast_dtype(c10::DeviceType type, at::ScalarType dtype) { at::autocast::set_autocast_dtype(type, dtype); }
#else
inline bool autocast_enabled(c10::DeviceType type) {
  return type == c10::DeviceType::CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
}
inline void set_autocast_enabled(c10::DeviceType type, bool on) {
  if (type == c10::DeviceType::CUDA) {
    at::autocast::set_enabled(on);
  } else {
    at::autocast::set_cpu_enabled(on);
  }
}
inline at::ScalarType autocast_dtype(c10::DeviceType type) {
  return type == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
}
inline void set_autocast_dtype(c10::DeviceType type, at::ScalarType dtype) {
  if (type == c10::DeviceType::CUDA) {
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
}
#endif

}  // namespace ganlite::compat
