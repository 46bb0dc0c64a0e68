// The generators' up-sampling (3x3 transposed conv, stride 2, padding 1, output padding 1) as a
// 2x2 stride-1 conv to 4x the channels and a pixel shuffle: LibTorch 1.13's CPU conv_transpose2d
// runs as a BLAS gemm plus col2im (1.4-1.8x slower than this oneDNN conv here) and in bf16 it
// misroutes to the forward conv and fails.
#include <torch/torch.h>

#include "ganlite/nn/lowering.h"

namespace ganlite::nn::lowering {

namespace {

bool is_up_sampling(const ConvSpec& c) {
  const std::vector<int64_t> one{1, 1}, two{2, 2};
  return c.transposed && c.groups == 1 && c.weight.size(2) == 3 && c.weight.size(3) == 3 && c.stride == two &&
         c.padding == one && c.output_padding == one && c.dilation == one && c.pre_pad.amount == 0;
}

// y[2m + a] of a 3-tap, stride-2 transposed conv (padding 1) reads x[m] through tap 1 when
// a = 0, and x[m] through tap 2 plus x[m + 1] through tap 0 when a = 1: per output phase
// (a, b) a 2x2 conv over x padded by one zero row / column at the bottom / right.
torch::Tensor phase_kernels(const torch::Tensor& weight_t) {
  const int64_t cin = weight_t.size(0), cout = weight_t.size(1);
  const auto wt = weight_t.to(torch::kDouble);
  auto w = torch::zeros({cout, 2, 2, cin, 2, 2}, wt.options());  // [co, a, b, ci, di, dj]
  const int64_t taps[2][2] = {{1, -1}, {2, 0}};                    // [phase][offset] -> kernel tap
  for (int a = 0; a < 2; ++a) {
    for (int di = 0; di < 2; ++di) {
      if (taps[a][di] < 0) continue;
      for (int b = 0; b < 2; ++b) {
        for (int dj = 0; dj < 2; ++dj) {
          if (taps[b][dj] < 0) continue;
          // wt[:, :, kh, kw] is [ci, co]
          w.select(1, a).select(1, b).select(2, di).select(2, dj).copy_(wt.select(2, taps[a][di]).select(2, taps[b][dj]).t());
        }
      }
    }
  }
  return w.reshape({cout * 4, cin, 2, 2});
}

void sub_pixel(Graph& graph) {
  for (auto& layer : graph) {
    if (layer.kind != LayerKind::Conv || !is_up_sampling(layer.conv)) continue;
    layer.conv.rewrite = ConvRewrite::sub_pixel;
    layer.conv.rewritten_weight = phase_kernels(layer.conv.weight);
    layer.conv.rewritten_bias = phase_bias(layer.conv.bias);
  }
}

}  // namespace

torch::Tensor phase_bias(const torch::Tensor& bias) {
  if (!bias.defined()) return {};
  const int64_t c = bias.size(0);
  return bias.to(torch::kDouble).view({c, 1}).expand({c, 4}).reshape({-1}).contiguous();
}

Pass sub_pixel_pass() { return {"sub_pixel", /*for_export=*/false, sub_pixel}; }

}  // namespace ganlite::nn::lowering
