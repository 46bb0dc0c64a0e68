// nn/direct_conv's row kernels for AVX-512 (16 lanes, 4 vectors per tile: 24 accumulators of 32
// registers). Compiled with -mavx512f -mfma; only called when the CPU has AVX-512F.
#include <immintrin.h>

#include "ganlite/nn/direct_conv_kernels.h"

namespace ganlite::nn::direct_conv {
namespace {
namespace avx512 {

#include "ganlite/nn/direct_conv_avx512_vec.inl"
using Vec = Avx512Vec;

#include "ganlite/nn/direct_conv_kernels.inl"

}  // namespace avx512
}  // namespace

void kernels::dense_avx512(const Job& job) { avx512::dense_any(job); }
void kernels::depthwise_avx512(const Job& job) { avx512::depthwise_rows(job); }

}  // namespace ganlite::nn::direct_conv
