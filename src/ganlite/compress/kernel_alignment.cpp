#include "ganlite/compress/kernel_alignment.h"

#include <torch/torch.h>

#include <algorithm>
#include <string>

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

std::vector<int64_t> data_parallel_chunk_sizes(int64_t n, int64_t parts) {
  if (parts < 1 || n < 1) {
    throw UsageError("kernel alignment chunks: need a batch >= 1 and parts >= 1 (got batch " + std::to_string(n) +
                     ", parts " + std::to_string(parts) + ")");
  }
  const int64_t chunk = (n + parts - 1) / parts;
  std::vector<int64_t> sizes;
  for (int64_t start = 0; start < n; start += chunk) sizes.push_back(std::min(chunk, n - start));
  return sizes;
}

torch::Tensor chunked_kernel_alignment(const torch::Tensor& student, const torch::Tensor& teacher, int64_t parts) {
  if (parts == 1) return kernel_alignment(student, teacher);
  if (teacher.size(0) != student.size(0)) return kernel_alignment(student, teacher);  // its message
  torch::Tensor total = torch::zeros({}, student.options());
  int64_t start = 0;
  for (const int64_t size : data_parallel_chunk_sizes(student.size(0), parts)) {
    // A 1x1 Gram matrix: KA is identically 1 (CAT computes 1 up to rounding), with zero gradient.
    total = size < 2 ? total + 1.0
                     : total + kernel_alignment(student.narrow(0, start, size), teacher.narrow(0, start, size));
    start += size;
  }
  return total;
}

}  // namespace ganlite::compress
