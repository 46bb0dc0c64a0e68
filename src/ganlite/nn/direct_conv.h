// Direct stride-1 convolutions for thin layers (issue 19), vectorised over the pixels of a row
// instead of over channels: a 62->13 or 23->62 conv fills every lane whatever its channel counts,
// where a channel-blocked kernel (oneDNN's, 16 channels per AVX-512 register) leaves lanes empty.
// Data is NCHW float32, addressed through strides so that a conv reads the interior of a padded
// buffer and writes into the interior of another (pads are written once, as a ring). The kernels
// come in AVX-512 and AVX2 builds chosen at run time, and a portable one.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ganlite::nn::direct_conv {

// avx512_bf16: dense convs on bf16 pairs (pack_bf16, to_bf16_pairs), fp32 sums.
enum class Isa { portable, avx2, avx512, avx512_bf16 };
std::string isa_name(Isa isa);
// The best ISA this CPU supports, capped by the oneDNN ISA limit of the process
// (ONEDNN_MAX_CPU_ISA / DNNL_MAX_CPU_ISA), so one switch limits every kernel.
Isa best_isa();
// The fp32 ISAs this CPU can run (portable first): what tests iterate over.
std::vector<Isa> runnable_isas();
// Whether the bf16 kernels run here: avx512_bf16 on the CPU and allowed by the oneDNN ISA limit.
bool bf16_supported();

// The convs the fast path's automatic choice gives these kernels: widths that leave a
// channel-blocked kernel's 16-lane vectors partly empty, or small enough that its per-call costs
// dominate. Wide convs (a teacher's 256-channel trunk) run at oneDNN's peak already.
bool thin(int64_t in_channels, int64_t out_channels);

// Planes of one tensor: element (n, c, y, x) at data[n * image + c * channel + y * row + x].
struct ConstPlanes {
  const float* data = nullptr;
  int64_t image = 0, channel = 0, row = 0;
};
struct Planes {
  float* data = nullptr;
  int64_t image = 0, channel = 0, row = 0;
};

// A conv's weights packed for the kernels: output channels in blocks of at most
// `block_limit(isa)`, each block's weights as [in_channel][ky][kx][out_in_block] (dense) or the
// weights as [channel][ky][kx] (depthwise).
struct PackedConv {
  Isa isa = Isa::portable;
  int in_channels = 0, out_channels = 0, k = 1;
  bool depthwise = false;
  std::vector<float> weights, bias;
  struct Block {
    int first = 0, count = 0;
    int64_t offset = 0;  // into weights
  };
  std::vector<Block> blocks;
};

// weight: [out, in, k, k] (dense) or [channels, 1, k, k] (depthwise) row-major float32; bias: out
// values or empty (zeros).
PackedConv pack(const float* weight, const float* bias, int out_channels, int in_channels, int k, bool depthwise,
                Isa isa);

// A dense conv for the bf16 kernels: inputs taken as pairs of channels (an odd last channel
// paired with a zero weight), weights rounded to bf16 (to nearest even) and paired the same way.
PackedConv pack_bf16(const float* weight, const float* bias, int out_channels, int in_channels, int k);

// fp32 planes (channels x height x width) as bf16 pairs: dst holds (channels + 1) / 2 planes of
// 32-bit words, word (c, y, x) = bf16(src 2c) in its low half, bf16(src 2c + 1) (0 past the last
// channel) in its high half, rounded to nearest even as LibTorch does.
void to_bf16_pairs(ConstPlanes src, Planes dst, int batch, int channels, int height, int width);

// A conv over `in`, which points at the top-left of its padded input: output (y, x) reads input
// rows y .. y + k - 1 and columns x .. x + k - 1.
struct Term {
  const PackedConv* conv = nullptr;
  ConstPlanes in;
};

// out(n, o, y, x) = sum over the terms of conv + bias, + addend(n, o, y, x) when addend.data is set
// (it may be `out` itself: accumulate), then max(., 0) when relu. Every term has out's channels.
struct Output {
  Planes out;
  std::vector<Term> terms;
  ConstPlanes addend;
  bool relu = false;
};

// Computes outputs that do not depend on each other (y < height, x < width of each image) in one
// parallel region: the intra-op threads take (output, channel block, rows) items from a shared
// counter, so a thread the OS deschedules holds up one item, not a fixed share of the work, and a
// CAT block needs 3 regions, not one per conv. An item runs an output's terms one after another.
void run(const std::vector<Output>& outputs, int batch, int height, int width);

// One conv: v = conv + bias (+ the value already in `out` when accumulate), then max(v, 0) (relu).
struct Epilogue {
  bool accumulate = false;
  bool relu = false;
};
void run(const PackedConv& conv, ConstPlanes in, Planes out, int batch, int height, int width, Epilogue epilogue);

enum class Ring { zero, reflect, replicate };
// Fills the p-wide border of padded planes (height + 2p rows of width + 2p) from their interior,
// as reflection / replication / zero padding of the interior would. Serial: a ring is small.
void fill_ring(Planes padded, int batch, int channels, int height, int width, int p, Ring ring);
// Copies `src` into the interior of `padded` and fills its ring, plane by plane in parallel.
void copy_padded(ConstPlanes src, Planes padded, int batch, int channels, int height, int width, int p, Ring ring);

}  // namespace ganlite::nn::direct_conv
