// nn/direct_conv's row kernels for AVX2 + FMA (8 lanes, 2 vectors per tile: 12 accumulators of 16
// registers). Compiled with -mavx2 -mfma; only called when the CPU has both.
#include <immintrin.h>

#include "ganlite/nn/direct_conv_kernels.h"

namespace ganlite::nn::direct_conv {
namespace {
namespace avx2 {

struct Vec {
  using Reg = __m256;
  using Mask = __m256i;
  static constexpr int kLanes = 8, kVecs = 2, kBlock = kernels::kAvx2Block;
  static Reg set1(float v) { return _mm256_set1_ps(v); }
  static Reg load(const float* p) { return _mm256_loadu_ps(p); }
  static Reg load(const float* p, Mask m) { return _mm256_maskload_ps(p, m); }
  static void store(float* p, Reg r) { _mm256_storeu_ps(p, r); }
  static void store(float* p, Reg r, Mask m) { _mm256_maskstore_ps(p, m, r); }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm256_fmadd_ps(a, b, c); }
  static Reg add(Reg a, Reg b) { return _mm256_add_ps(a, b); }
  static Reg relu(Reg a) { return _mm256_max_ps(a, _mm256_setzero_ps()); }
  // Lanes [0, n) on: a lane is on when its sign bit is set.
  static Mask mask(int n) { return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); }
};

#include "ganlite/nn/direct_conv_kernels.inl"

}  // namespace avx2
}  // namespace

void kernels::dense_avx2(const Job& job) { avx2::dense_any(job); }
void kernels::depthwise_avx2(const Job& job) { avx2::depthwise_rows(job); }

}  // namespace ganlite::nn::direct_conv
