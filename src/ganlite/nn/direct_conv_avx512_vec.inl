// The AVX-512 vector type of nn/direct_conv's kernels (16 lanes, 4 vectors per tile: 24
// accumulators of 32 registers), included inside the namespace of each AVX-512 kernel file
// (direct_conv_avx512.cpp, direct_conv_avx512_bf16.cpp, compiled with -mavx512f) after
// <immintrin.h> and direct_conv_kernels.h.

// GCC 12's _mm512_max_ps passes _mm512_undefined_ps() as its unused merge source, which
// -Wmaybe-uninitialized reports once inlined.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

struct Avx512Vec {
  using Reg = __m512;
  using Mask = __mmask16;
  static constexpr int kLanes = 16, kVecs = 4, kBlock = kernels::kAvx512Block;
  static Reg set1(float v) { return _mm512_set1_ps(v); }
  static Reg load(const float* p) { return _mm512_loadu_ps(p); }
  static Reg load(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(float* p, Reg r) { _mm512_storeu_ps(p, r); }
  static void store(float* p, Reg r, Mask m) { _mm512_mask_storeu_ps(p, m, r); }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_ps(a, b, c); }
  static Reg add(Reg a, Reg b) { return _mm512_add_ps(a, b); }
  static Reg relu(Reg a) { return _mm512_max_ps(a, _mm512_setzero_ps()); }
  static Mask mask(int n) { return static_cast<Mask>((1u << n) - 1u); }
};
