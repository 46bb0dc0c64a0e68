// nn/direct_conv's dense row kernel for AVX-512 BF16: the AVX-512 tile with each FMA replaced by
// vdpbf16ps, which multiplies the two bf16 halves of each 32-bit lane by a broadcast pair of
// weights and adds both products to an fp32 accumulator. Inputs are pairs of channels
// interleaved per pixel (one 32-bit word = channels 2i and 2i + 1 of a pixel, to_bf16_pairs),
// weights pairs likewise (pack_bf16), so the template's "float" loads and broadcasts move pairs;
// sums, bias, addend and output stay fp32. Compiled with -mavx512f -mavx512bf16 -mfma; only called
// when the CPU has avx512_bf16.
#include <immintrin.h>

#include "ganlite/nn/direct_conv_kernels.h"

namespace ganlite::nn::direct_conv {
namespace {
namespace avx512_bf16 {

#include "ganlite/nn/direct_conv_avx512_vec.inl"

struct Vec : Avx512Vec {
  // c + a.pair . b.pair in every lane (a: the broadcast weights, b: the inputs).
  static Reg fma(Reg a, Reg b, Reg c) {
    return _mm512_dpbf16_ps(c, (__m512bh)_mm512_castps_si512(a), (__m512bh)_mm512_castps_si512(b));  // GCC vector casts
  }
};

#include "ganlite/nn/direct_conv_kernels.inl"

}  // namespace avx512_bf16
}  // namespace

void kernels::dense_avx512_bf16(const Job& job) { avx512_bf16::dense_any(job); }

}  // namespace ganlite::nn::direct_conv
