// Internal to nn/direct_conv.cpp: the per-ISA row kernels. Each ISA's file is compiled with its
// own target flags and includes nothing that another translation unit could share (no standard
// library templates), so no AVX-512 instruction can leak into code a portable caller runs.
#pragma once
#include <cstdint>

namespace ganlite::nn::direct_conv::kernels {

// Rows [row_begin, row_end) of `count` output channels of one image.
struct Job {
  const float* in;  // channel 0, padded row 0, padded column 0
  int64_t in_channel, in_row;
  int in_channels;  // dense: inputs per output; depthwise: unused (one input per output)
  int k;
  const float* weights;  // dense: [in_channels][k][k][count]; depthwise: [count][k][k]
  const float* bias;     // count values
  int count;
  float* out;  // output channel 0, row 0, column 0
  int64_t out_channel, out_row;
  const float* addend;  // added to each value when not null (may be `out` itself)
  int64_t addend_channel, addend_row;
  int width, row_begin, row_end;
  bool relu;
};

// The most output channels one dense call may take (the register tile's height).
constexpr int kAvx512Block = 6;
constexpr int kAvx2Block = 6;

void dense_avx512(const Job& job);
void depthwise_avx512(const Job& job);
void dense_avx2(const Job& job);
// Inputs and weights as bf16 pairs in 32-bit words, `in_channels` counting pairs.
void dense_avx512_bf16(const Job& job);
void depthwise_avx2(const Job& job);

}  // namespace ganlite::nn::direct_conv::kernels
