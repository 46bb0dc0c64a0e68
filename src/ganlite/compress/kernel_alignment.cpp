#include "ganlite/compress/kernel_alignment.h"

#include <torch/torch.h>

#include "ganlite/util/error.h"

namespace ganlite::compress {

torch::Tensor kernel_alignment(const torch::Tensor& student, const torch::Tensor& teacher) {
  const int64_t n = student.size(0);
  if (teacher.size(0) != n) {
    throw UsageError("kernel alignment: student batch " + std::to_string(n) + " != teacher batch " +
                     std::to_string(teacher.size(0)));
  }
  if (n < 2) {
    throw UsageError("kernel alignment needs at least 2 samples per batch (got " + std::to_string(n) +
                     "): with one sample the Gram matrix is 1x1 and KA is always 1; use --batch-size 2 or more");
  }
  auto x = student.reshape({n, -1});
  auto y = teacher.reshape({n, -1});
  // KA is invariant to scaling each side, so normalising first keeps the Gram entries O(1)
  // and avoids float32 overflow on wide 256x256 feature maps without changing value or gradient.
  x = x / x.norm().clamp_min(1e-12);
  y = y / y.norm().clamp_min(1e-12);
  const auto gx = torch::mm(x, x.t());
  const auto gy = torch::mm(y, y.t());
  return (gx * gy).sum() / (gx.norm() * gy.norm()).clamp_min(1e-12);
}

}  // namespace ganlite::compress
