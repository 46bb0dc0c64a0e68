#include "ganlite/nn/direct_conv.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <cstring>

#include "ganlite/nn/direct_conv_kernels.h"
#include "ganlite/util/error.h"

namespace ganlite::nn::direct_conv {

namespace {

// The oneDNN ISA limit, upper-cased ("" when unset).
std::string isa_limit() {
  const char* v = std::getenv("ONEDNN_MAX_CPU_ISA");
  if (v == nullptr || *v == '\0') v = std::getenv("DNNL_MAX_CPU_ISA");
  std::string s = v == nullptr ? "" : v;
  for (auto& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return s;
}

bool cpu_has(Isa isa) {
#ifdef GANLITE_PORTABLE_KERNELS_ONLY  // not an x86-64 build: the ISA kernels are not compiled
  return isa == Isa::portable;
#else
  switch (isa) {
    case Isa::avx512: return __builtin_cpu_supports("avx512f");
    case Isa::avx512_bf16: return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
    case Isa::avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::portable: return true;
  }
  return false;
#endif
}

int block_limit(Isa isa) {
  switch (isa) {
    case Isa::avx512:
    case Isa::avx512_bf16: return kernels::kAvx512Block;
    case Isa::avx2: return kernels::kAvx2Block;
    case Isa::portable: break;
  }
  return 8;
}

// The portable kernel: the same arithmetic as the vector kernels, one value at a time (each sum
// in the same order: bias, then inputs by channel, ky, kx).
void portable_rows(const kernels::Job& j, bool depthwise) {
  for (int o = 0; o < j.count; ++o) {
    for (int y = j.row_begin; y < j.row_end; ++y) {
      float* dst = j.out + o * j.out_channel + y * j.out_row;
      for (int x = 0; x < j.width; ++x) {
        float acc = j.bias[o];
        const int channels = depthwise ? 1 : j.in_channels;
        for (int c = 0; c < channels; ++c) {
          const float* plane = j.in + (depthwise ? o : c) * j.in_channel + y * j.in_row + x;
          const float* w = depthwise ? j.weights + o * j.k * j.k : j.weights + c * j.k * j.k * j.count;
          for (int t = 0; t < j.k * j.k; ++t) {
            const float wt = depthwise ? w[t] : w[t * j.count + o];
            acc += wt * plane[(t / j.k) * j.in_row + t % j.k];
          }
        }
        if (j.addend) acc += j.addend[o * j.addend_channel + y * j.addend_row + x];
        dst[x] = j.relu ? std::max(acc, 0.0f) : acc;
      }
    }
  }
}

void run_job(Isa isa, bool depthwise, const kernels::Job& job) {
  switch (isa) {
#ifndef GANLITE_PORTABLE_KERNELS_ONLY
    case Isa::avx512: return depthwise ? kernels::depthwise_avx512(job) : kernels::dense_avx512(job);
    case Isa::avx512_bf16: return kernels::dense_avx512_bf16(job);  // pack_bf16 makes dense convs only
    case Isa::avx2: return depthwise ? kernels::depthwise_avx2(job) : kernels::dense_avx2(job);
#endif
    default: return portable_rows(job, depthwise);
  }
}

// Calls fn(item) for every item in [0, n) on the intra-op threads, each thread taking the next
// item from a shared counter: a descheduled thread delays its current item only, not a fixed
// share of the work (static partitioning waits for a thread's whole share).
template <class Fn>
void for_each_item(int64_t n, const Fn& fn) {
  const int64_t threads = std::min<int64_t>(at::get_num_threads(), n);
  if (threads <= 1 || at::in_parallel_region()) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<int64_t> next{0};
  at::parallel_for(0, threads, 1, [&](int64_t, int64_t) {
    for (int64_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) fn(i);
  });
}

// Rows per work item: about 8 items per thread and output block, at least one row.
int rows_per_item(int height, int64_t items_per_row_set) {
  const int64_t threads = std::max(1, at::get_num_threads());
  const int64_t want = (threads * 8 + items_per_row_set - 1) / items_per_row_set;
  return static_cast<int>(std::max<int64_t>(1, height / std::max<int64_t>(1, want)));
}

}  // namespace

std::string isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx512_bf16: return "avx512_bf16";
    case Isa::avx2: return "avx2";
    case Isa::portable: break;
  }
  return "portable";
}

bool thin(int64_t in_channels, int64_t out_channels) {
  return out_channels % 16 != 0 || in_channels % 16 != 0 || in_channels * out_channels <= 64 * 64;
}

Isa best_isa() {
  static const Isa best = [] {
    const std::string limit = isa_limit();
    const bool capped_below_avx512 = !limit.empty() && limit.rfind("AVX512", 0) != 0 && limit.rfind("AVX10", 0) != 0 &&
                                     limit.rfind("AMX", 0) != 0 && limit != "ALL";
    const bool capped_below_avx2 = capped_below_avx512 && limit.rfind("AVX2", 0) != 0;
    if (!capped_below_avx512 && cpu_has(Isa::avx512)) return Isa::avx512;
    if (!capped_below_avx2 && cpu_has(Isa::avx2)) return Isa::avx2;
    return Isa::portable;
  }();
  return best;
}

bool bf16_supported() {
  static const bool supported = [] {
    const std::string limit = isa_limit();
    const bool allowed = limit.empty() || limit.rfind("AVX512_CORE_BF16", 0) == 0 ||
                         limit.rfind("AVX512_CORE_AMX", 0) == 0 || limit.rfind("AMX", 0) == 0 ||
                         limit.rfind("AVX10", 0) == 0 || limit == "ALL";
    return allowed && cpu_has(Isa::avx512_bf16);
  }();
  return supported;
}

std::vector<Isa> runnable_isas() {
  std::vector<Isa> isas;
  for (Isa isa : {Isa::portable, Isa::avx2, Isa::avx512}) {
    if (cpu_has(isa)) isas.push_back(isa);
  }
  return isas;
}

namespace {

// A PackedConv with its shape and bias (zeros without one), no weights yet.
PackedConv packed_header(const float* bias, int out_channels, int in_channels, int k, bool depthwise, Isa isa) {
  require(out_channels > 0 && in_channels > 0 && k > 0, "direct conv: empty weight");
  PackedConv p;
  p.isa = isa;
  p.in_channels = in_channels;
  p.out_channels = out_channels;
  p.k = k;
  p.depthwise = depthwise;
  p.bias.assign(out_channels, 0.0f);
  if (bias != nullptr) std::copy(bias, bias + out_channels, p.bias.begin());
  return p;
}

// Dense weights in balanced blocks of at most block_limit(p.isa) outputs (13 channels as 7 + 6
// would not fit a 6-row tile; as 5 + 4 + 4 they do), each block as [input][ky][kx][output];
// value(o, input, tap) is one packed value.
template <class Value>
void pack_dense_blocks(PackedConv& p, const Value& value) {
  const int taps = p.k * p.k, limit = block_limit(p.isa);
  const int n_blocks = (p.out_channels + limit - 1) / limit;
  p.weights.resize(static_cast<size_t>(p.out_channels) * p.in_channels * taps);
  int first = 0;
  int64_t offset = 0;
  for (int b = 0; b < n_blocks; ++b) {
    const int count = p.out_channels / n_blocks + (b < p.out_channels % n_blocks ? 1 : 0);
    p.blocks.push_back({first, count, offset});
    for (int c = 0; c < p.in_channels; ++c) {
      for (int t = 0; t < taps; ++t) {
        for (int o = first; o < first + count; ++o) p.weights[offset++] = value(o, c, t);
      }
    }
    first += count;
  }
}

}  // namespace

PackedConv pack(const float* weight, const float* bias, int out_channels, int in_channels, int k, bool depthwise,
                Isa isa) {
  PackedConv p = packed_header(bias, out_channels, in_channels, k, depthwise, isa);
  require(!depthwise || in_channels == out_channels, "direct conv: a depthwise conv has as many inputs as outputs");
  const int taps = k * k;
  if (depthwise) {
    p.weights.assign(weight, weight + static_cast<int64_t>(out_channels) * taps);
    // Depthwise items are channel groups of up to 8.
    for (int first = 0; first < out_channels; first += 8) p.blocks.push_back({first, std::min(8, out_channels - first), 0});
    return p;
  }
  pack_dense_blocks(p, [&](int o, int c, int t) { return weight[(static_cast<int64_t>(o) * in_channels + c) * taps + t]; });
  return p;
}

namespace {

// fp32 to bf16 bits, rounded to nearest even (NaNs stay NaN), as c10::BFloat16 rounds.
uint32_t bf16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (u >> 16) | 0x40u;
  return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}

float pair_word(float low, float high) {
  const uint32_t word = bf16_bits(low) | (bf16_bits(high) << 16);
  float f;
  std::memcpy(&f, &word, sizeof f);
  return f;
}

}  // namespace

PackedConv pack_bf16(const float* weight, const float* bias, int out_channels, int in_channels, int k) {
  PackedConv p = packed_header(bias, out_channels, (in_channels + 1) / 2, k, false, Isa::avx512_bf16);  // pairs
  const int taps = k * k;
  auto w = [&](int o, int c, int t) {
    return c < in_channels ? weight[(static_cast<int64_t>(o) * in_channels + c) * taps + t] : 0.0f;
  };
  pack_dense_blocks(p, [&](int o, int pair, int t) { return pair_word(w(o, 2 * pair, t), w(o, 2 * pair + 1, t)); });
  return p;
}

void to_bf16_pairs(ConstPlanes src, Planes dst, int batch, int channels, int height, int width) {
  const int pairs = (channels + 1) / 2;
  for_each_item(static_cast<int64_t>(batch) * pairs, [&](int64_t i) {
    const int64_t n = i / pairs, pair = i % pairs;
    const float* low = src.data + n * src.image + 2 * pair * src.channel;
    const float* high = 2 * pair + 1 < channels ? low + src.channel : nullptr;
    float* out = dst.data + n * dst.image + pair * dst.channel;
    for (int y = 0; y < height; ++y) {
      for (int x = 0; x < width; ++x) {
        out[y * dst.row + x] = pair_word(low[y * src.row + x], high ? high[y * src.row + x] : 0.0f);
      }
    }
  });
}

void run(const std::vector<Output>& outputs, int batch, int height, int width) {
  if (outputs.empty() || batch <= 0 || height <= 0 || width <= 0) return;
  // Items of output i: [first_item[i], first_item[i + 1]), as (image, block, row chunk).
  int64_t row_sets = 0;
  for (const auto& o : outputs) {
    require(!o.terms.empty(), "direct conv: an output without terms");
    for (const auto& t : o.terms) {
      require(t.conv->out_channels == o.terms.front().conv->out_channels && t.conv->isa == o.terms.front().conv->isa &&
                  t.conv->depthwise == o.terms.front().conv->depthwise,
              "direct conv: the terms of one output differ in channels or kernels");
    }
    row_sets += static_cast<int64_t>(batch) * static_cast<int64_t>(o.terms.front().conv->blocks.size());
  }
  const int rows = rows_per_item(height, row_sets);
  const int64_t chunks = (height + rows - 1) / rows;
  std::vector<int64_t> first_item{0};
  for (const auto& o : outputs) {
    first_item.push_back(first_item.back() + batch * static_cast<int64_t>(o.terms.front().conv->blocks.size()) * chunks);
  }
  for_each_item(first_item.back(), [&](int64_t item) {
    const size_t i = static_cast<size_t>(std::upper_bound(first_item.begin(), first_item.end(), item) - first_item.begin() - 1);
    const Output& o = outputs[i];
    const int64_t local = item - first_item[i], set = local / chunks;
    const auto n_blocks = static_cast<int64_t>(o.terms.front().conv->blocks.size());
    const int n = static_cast<int>(set / n_blocks);
    const int64_t b = set % n_blocks;
    const int row_begin = static_cast<int>(local % chunks) * rows;
    for (size_t t = 0; t < o.terms.size(); ++t) {
      const PackedConv& conv = *o.terms[t].conv;
      const ConstPlanes& in = o.terms[t].in;
      const auto& block = conv.blocks[b];
      kernels::Job job{};
      job.in = in.data + n * in.image + (conv.depthwise ? block.first * in.channel : 0);
      job.in_channel = in.channel;
      job.in_row = in.row;
      job.in_channels = conv.in_channels;
      job.k = conv.k;
      job.weights = conv.weights.data() + (conv.depthwise ? int64_t{block.first} * conv.k * conv.k : block.offset);
      job.bias = conv.bias.data() + block.first;
      job.count = block.count;
      job.out = o.out.data + n * o.out.image + block.first * o.out.channel;
      job.out_channel = o.out.channel;
      job.out_row = o.out.row;
      // The first term adds the addend, each later one what the terms before it wrote.
      if (t == 0 && o.addend.data != nullptr) {
        job.addend = o.addend.data + n * o.addend.image + block.first * o.addend.channel;
        job.addend_channel = o.addend.channel;
        job.addend_row = o.addend.row;
      } else if (t > 0) {
        job.addend = job.out;
        job.addend_channel = job.out_channel;
        job.addend_row = job.out_row;
      }
      job.width = width;
      job.row_begin = row_begin;
      job.row_end = std::min(height, row_begin + rows);
      job.relu = o.relu && t + 1 == o.terms.size();
      run_job(conv.isa, conv.depthwise, job);
    }
  });
}

void run(const PackedConv& conv, ConstPlanes in, Planes out, int batch, int height, int width, Epilogue epilogue) {
  Output o{out, {{&conv, in}}, {}, epilogue.relu};
  if (epilogue.accumulate) o.addend = {out.data, out.image, out.channel, out.row};
  run({o}, batch, height, width);
}

namespace {

// The ring of one padded plane whose interior is filled.
void fill_plane_ring(float* base, int64_t row_stride, int height, int width, int p, Ring ring) {
  auto row = [&](int y) { return base + y * row_stride; };
  // Rows above and below the interior (interior columns only), then every row's side columns.
  for (int d = 1; d <= p; ++d) {
    const int above = p - d, below = p + height - 1 + d;
    const int src_above = ring == Ring::reflect ? p + d : p;
    const int src_below = ring == Ring::reflect ? p + height - 1 - d : p + height - 1;
    for (int x = p; x < p + width; ++x) {
      row(above)[x] = ring == Ring::zero ? 0.0f : row(src_above)[x];
      row(below)[x] = ring == Ring::zero ? 0.0f : row(src_below)[x];
    }
  }
  for (int y = 0; y < height + 2 * p; ++y) {
    float* r = row(y);
    for (int d = 1; d <= p; ++d) {
      r[p - d] = ring == Ring::zero ? 0.0f : r[ring == Ring::reflect ? p + d : p];
      r[p + width - 1 + d] = ring == Ring::zero ? 0.0f : r[ring == Ring::reflect ? p + width - 1 - d : p + width - 1];
    }
  }
}

void require_ring_fits(int height, int width, int p, Ring ring) {
  require(ring != Ring::reflect || (p < height && p < width),
          "reflection padding " + std::to_string(p) + " needs an input larger than " + std::to_string(height) + "x" +
              std::to_string(width));
}

}  // namespace

void fill_ring(Planes padded, int batch, int channels, int height, int width, int p, Ring ring) {
  if (p <= 0) return;
  require_ring_fits(height, width, p, ring);
  for (int64_t i = 0; i < static_cast<int64_t>(batch) * channels; ++i) {
    fill_plane_ring(padded.data + (i / channels) * padded.image + (i % channels) * padded.channel, padded.row, height,
                    width, p, ring);
  }
}

void copy_padded(ConstPlanes src, Planes padded, int batch, int channels, int height, int width, int p, Ring ring) {
  require_ring_fits(height, width, p, ring);
  for_each_item(static_cast<int64_t>(batch) * channels, [&](int64_t i) {
    const float* from = src.data + (i / channels) * src.image + (i % channels) * src.channel;
    float* base = padded.data + (i / channels) * padded.image + (i % channels) * padded.channel;
    for (int y = 0; y < height; ++y) std::copy(from + y * src.row, from + y * src.row + width, base + (y + p) * padded.row + p);
    fill_plane_ring(base, padded.row, height, width, p, ring);
  });
}

}  // namespace ganlite::nn::direct_conv
