// Every difference between the LibTorch versions ganlite builds against (Debian's 1.13,
// pip's 2.x with CUDA) lives here, so the rest of the code is version-free.
#pragma once
#include <torch/torch.h>
#include <torch/version.h>

#include <string>

#define GANLITE_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

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

}  // namespace ganlite::compat
