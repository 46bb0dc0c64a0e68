// The row kernels of nn/direct_conv, written once over a vector type `Vec` that the including
// file defines for its ISA (direct_conv_avx512.cpp, direct_conv_avx2.cpp) inside its own
// namespace. A register tile is `Block` output channels x Vec::kVecs vectors of one output row:
// each input vector loaded feeds `Block` FMAs, each broadcast weight Vec::kVecs of them.

// The epilogue of one output row of a tile: + addend, ReLU, store (masked in a row's last chunk).
template <bool Masked>
inline void finish_row(const kernels::Job& j, int o, int y, int x0, typename Vec::Reg* acc,
                       const typename Vec::Mask* masks) {
  constexpr int V = Vec::kVecs, L = Vec::kLanes;
  float* dst = j.out + o * j.out_channel + y * j.out_row + x0;
  const float* add = j.addend ? j.addend + o * j.addend_channel + y * j.addend_row + x0 : nullptr;
  for (int v = 0; v < V; ++v) {
    auto r = acc[v];
    if (add) r = Vec::add(r, Masked ? Vec::load(add + v * L, masks[v]) : Vec::load(add + v * L));
    if (j.relu) r = Vec::relu(r);
    if (Masked) {
      Vec::store(dst + v * L, r, masks[v]);
    } else {
      Vec::store(dst + v * L, r);
    }
  }
}

template <int Block, bool Masked>
inline void dense_tile(const kernels::Job& j, int y, int x0, const typename Vec::Mask* masks) {
  constexpr int V = Vec::kVecs, L = Vec::kLanes;
  typename Vec::Reg acc[Block][V];
  for (int o = 0; o < Block; ++o) {
    const auto b = Vec::set1(j.bias[o]);
    for (int v = 0; v < V; ++v) acc[o][v] = b;
  }
  const float* w = j.weights;
  for (int c = 0; c < j.in_channels; ++c) {
    const float* plane = j.in + c * j.in_channel + y * j.in_row + x0;
    for (int ky = 0; ky < j.k; ++ky) {
      const float* row = plane + ky * j.in_row;
      for (int kx = 0; kx < j.k; ++kx, w += Block) {
        typename Vec::Reg xv[V];
        for (int v = 0; v < V; ++v) xv[v] = Masked ? Vec::load(row + kx + v * L, masks[v]) : Vec::load(row + kx + v * L);
        for (int o = 0; o < Block; ++o) {
          const auto wv = Vec::set1(w[o]);
          for (int v = 0; v < V; ++v) acc[o][v] = Vec::fma(wv, xv[v], acc[o][v]);
        }
      }
    }
  }
  for (int o = 0; o < Block; ++o) finish_row<Masked>(j, o, y, x0, acc[o], masks);
}

// Two output rows at once for blocks of at most half the tile height (the last conv to RGB): input
// row y + r feeds output row y with kernel row r and row y + 1 with kernel row r - 1, so each
// input vector loaded feeds both and loads per FMA halve.
template <int Block, bool Masked>
inline void dense_tile_two_rows(const kernels::Job& j, int y, int x0, const typename Vec::Mask* masks) {
  constexpr int V = Vec::kVecs, L = Vec::kLanes;
  typename Vec::Reg top[Block][V], bottom[Block][V];
  for (int o = 0; o < Block; ++o) {
    const auto b = Vec::set1(j.bias[o]);
    for (int v = 0; v < V; ++v) top[o][v] = bottom[o][v] = b;
  }
  const int k = j.k, taps = k * k;
  for (int c = 0; c < j.in_channels; ++c) {
    const float* plane = j.in + c * j.in_channel + y * j.in_row + x0;
    const float* wc = j.weights + c * taps * Block;
    for (int r = 0; r <= k; ++r) {
      const float* row = plane + r * j.in_row;
      for (int kx = 0; kx < k; ++kx) {
        typename Vec::Reg xv[V];
        for (int v = 0; v < V; ++v) xv[v] = Masked ? Vec::load(row + kx + v * L, masks[v]) : Vec::load(row + kx + v * L);
        if (r < k) {
          const float* w = wc + (r * k + kx) * Block;
          for (int o = 0; o < Block; ++o) {
            const auto wv = Vec::set1(w[o]);
            for (int v = 0; v < V; ++v) top[o][v] = Vec::fma(wv, xv[v], top[o][v]);
          }
        }
        if (r > 0) {
          const float* w = wc + ((r - 1) * k + kx) * Block;
          for (int o = 0; o < Block; ++o) {
            const auto wv = Vec::set1(w[o]);
            for (int v = 0; v < V; ++v) bottom[o][v] = Vec::fma(wv, xv[v], bottom[o][v]);
          }
        }
      }
    }
  }
  for (int o = 0; o < Block; ++o) {
    finish_row<Masked>(j, o, y, x0, top[o], masks);
    finish_row<Masked>(j, o, y + 1, x0, bottom[o], masks);
  }
}

// The masks of the vectors of a row's last, partial chunk of `valid` pixels.
inline void tail_masks(int valid, typename Vec::Mask* masks) {
  for (int v = 0; v < Vec::kVecs; ++v) {
    const int n = valid - v * Vec::kLanes;
    masks[v] = Vec::mask(n < 0 ? 0 : n > Vec::kLanes ? Vec::kLanes : n);
  }
}

template <int Block>
void dense_rows(const kernels::Job& j) {
  constexpr int chunk = Vec::kVecs * Vec::kLanes;
  const int full = j.width / chunk * chunk;
  typename Vec::Mask masks[Vec::kVecs];
  tail_masks(j.width - full, masks);
  int y = j.row_begin;
  if constexpr (2 * Block <= Vec::kBlock) {
    for (; y + 1 < j.row_end; y += 2) {
      for (int x0 = 0; x0 < full; x0 += chunk) dense_tile_two_rows<Block, false>(j, y, x0, masks);
      if (full < j.width) dense_tile_two_rows<Block, true>(j, y, full, masks);
    }
  }
  for (; y < j.row_end; ++y) {
    for (int x0 = 0; x0 < full; x0 += chunk) dense_tile<Block, false>(j, y, x0, masks);
    if (full < j.width) dense_tile<Block, true>(j, y, full, masks);
  }
}

template <bool Masked>
inline void depthwise_tile(const kernels::Job& j, int o, int y, int x0, const typename Vec::Mask* masks) {
  constexpr int V = Vec::kVecs, L = Vec::kLanes;
  typename Vec::Reg acc[V];
  for (int v = 0; v < V; ++v) acc[v] = Vec::set1(j.bias[o]);
  const float* w = j.weights + o * j.k * j.k;
  const float* plane = j.in + o * j.in_channel + y * j.in_row + x0;
  for (int ky = 0; ky < j.k; ++ky) {
    const float* row = plane + ky * j.in_row;
    for (int kx = 0; kx < j.k; ++kx) {
      const auto wv = Vec::set1(w[ky * j.k + kx]);
      for (int v = 0; v < V; ++v) {
        const auto xv = Masked ? Vec::load(row + kx + v * L, masks[v]) : Vec::load(row + kx + v * L);
        acc[v] = Vec::fma(wv, xv, acc[v]);
      }
    }
  }
  finish_row<Masked>(j, o, y, x0, acc, masks);
}

inline void depthwise_rows(const kernels::Job& j) {
  constexpr int chunk = Vec::kVecs * Vec::kLanes;
  const int full = j.width / chunk * chunk;
  typename Vec::Mask masks[Vec::kVecs];
  tail_masks(j.width - full, masks);
  for (int o = 0; o < j.count; ++o) {
    for (int y = j.row_begin; y < j.row_end; ++y) {
      for (int x0 = 0; x0 < full; x0 += chunk) depthwise_tile<false>(j, o, y, x0, masks);
      if (full < j.width) depthwise_tile<true>(j, o, y, full, masks);
    }
  }
}

inline void dense_any(const kernels::Job& j) {
  static_assert(Vec::kBlock == 6, "dense_any dispatches blocks of 1..6 output channels");
  switch (j.count) {
    case 1: return dense_rows<1>(j);
    case 2: return dense_rows<2>(j);
    case 3: return dense_rows<3>(j);
    case 4: return dense_rows<4>(j);
    case 5: return dense_rows<5>(j);
    case 6: return dense_rows<6>(j);
    default: __builtin_trap();  // pack() never makes a larger block
  }
}
