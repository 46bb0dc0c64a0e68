// nn/direct_conv: every ISA this CPU runs (portable, AVX2, AVX-512) against LibTorch's conv2d, on
// widths that are and are not multiples of the vector lanes, dense and depthwise, with each
// epilogue, reading and writing the interiors of padded buffers; and the pad rings against
// LibTorch's pads.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "ganlite/nn/direct_conv.h"
#include "ganlite/util/error.h"

namespace {

namespace dc = ganlite::nn::direct_conv;

struct Shape {
  int in, out, k, height, width;
  bool depthwise;
};

std::string describe(const Shape& s, dc::Isa isa) {
  return dc::isa_name(isa) + " " + std::to_string(s.in) + "->" + std::to_string(s.out) + " k" + std::to_string(s.k) +
         " " + std::to_string(s.height) + "x" + std::to_string(s.width) + (s.depthwise ? " depthwise" : "");
}

dc::ConstPlanes const_planes(const torch::Tensor& t, int64_t offset = 0) {
  return {t.data_ptr<float>() + offset, t.stride(0), t.stride(1), t.stride(2)};
}
dc::Planes planes(torch::Tensor& t, int64_t offset = 0) {
  return {t.data_ptr<float>() + offset, t.stride(0), t.stride(1), t.stride(2)};
}

// The direct conv of `x` (already padded) and LibTorch's, with a bound from fp32 arithmetic: each
// output is a sum of K = in * k * k products, a bias and (accumulating) the previous value; two
// evaluations in any order differ by at most 2 gamma_(K+2) times the sum of magnitudes, which is
// the same conv of |x| and |w| plus |bias| and |previous|.
void check(const Shape& s, dc::Isa isa, dc::Epilogue epilogue) {
  torch::manual_seed(s.in * 131 + s.out * 7 + s.k + s.width);
  const int batch = 2, p = s.k / 2;
  const auto x = torch::randn({batch, s.in, s.height + 2 * p, s.width + 2 * p});
  const auto w = torch::randn({s.out, s.depthwise ? 1 : s.in, s.k, s.k});
  const auto b = torch::randn({s.out});
  const int64_t groups = s.depthwise ? s.in : 1;
  // The output lives inside a larger buffer (a padded one, with one more row and column of
  // margin): the kernel must write the interior and nothing else.
  auto buffer = torch::full({batch, s.out, s.height + 2, s.width + 3}, 7.0f);
  auto interior = buffer.narrow(2, 1, s.height).narrow(3, 2, s.width);
  const auto previous = torch::randn({batch, s.out, s.height, s.width});
  if (epilogue.accumulate) interior.copy_(previous);

  const std::vector<int64_t> one{1, 1}, zero{0, 0};
  auto want = at::conv2d(x, w, b, one, zero, one, groups);
  auto magnitude = at::conv2d(x.abs(), w.abs(), b.abs(), one, zero, one, groups);
  if (epilogue.accumulate) want = want + previous, magnitude = magnitude + previous.abs();
  if (epilogue.relu) want = want.relu();

  const auto packed = dc::pack(w.contiguous().data_ptr<float>(), b.data_ptr<float>(), s.out, s.in, s.k, s.depthwise, isa);
  const int64_t offset = buffer.stride(2) + 2;
  dc::run(packed, const_planes(x), planes(buffer, offset), batch, s.height, s.width, epilogue);

  const double terms = (s.depthwise ? 1 : s.in) * s.k * s.k + 2, u = 0x1p-24;
  const auto bound = magnitude * (2.0 * terms * u / (1.0 - terms * u));
  const auto excess = (interior - want).abs() - bound;
  EXPECT_LE(excess.max().item<double>(), 0.0) << describe(s, isa);
  EXPECT_GT(want.abs().max().item<double>(), 0.5) << "degenerate case " << describe(s, isa);
  // Untouched margin: every value outside the interior is still 7.
  auto margin = buffer.clone();
  margin.narrow(2, 1, s.height).narrow(3, 2, s.width).fill_(7.0f);
  EXPECT_TRUE(torch::all(margin == 7.0f).item<bool>()) << "wrote outside the output " << describe(s, isa);
}

TEST(DirectConv, MatchesLibTorchOnEveryIsaAndWidth) {
  const std::vector<Shape> shapes{
      {3, 16, 7, 9, 37, false},  {62, 13, 5, 6, 64, false}, {13, 62, 5, 5, 21, false}, {23, 7, 3, 4, 70, false},
      {62, 36, 1, 3, 64, false}, {5, 1, 3, 2, 1, false},    {18, 3, 7, 8, 16, false},   {9, 11, 1, 3, 8, false},
      {7, 2, 5, 5, 23, false},   // blocks of <= 3 channels take two rows at a time; 5 rows: 2 + 2 + 1
      {36, 36, 5, 7, 64, true},  {13, 13, 3, 5, 13, true},  {4, 4, 1, 2, 70, true},     {20, 20, 5, 9, 5, true},
  };
  for (const auto isa : dc::runnable_isas()) {
    for (const auto& s : shapes) {
      check(s, isa, {false, false});
      check(s, isa, {false, true});
      check(s, isa, {true, false});
      check(s, isa, {true, true});
    }
  }
}

TEST(DirectConv, SumsTermsAndAnAddendInOneRegion) {
  // Two outputs in one call: a = relu(conv3x3(u) + conv5x5(v) + r), b = conv1x1(u); u and v have
  // different channel counts, a has 13 channels (blocks of 5, 4, 4 on AVX-512).
  torch::manual_seed(12);
  const int h = 7, w = 19, p = 2;
  const auto u = torch::randn({2, 9, h + 2 * p, w + 2 * p}), v = torch::randn({2, 4, h + 2 * p, w + 2 * p});
  const auto r = torch::randn({2, 13, h, w});
  const auto w3 = torch::randn({13, 9, 3, 3}), w5 = torch::randn({13, 4, 5, 5}), w1 = torch::randn({6, 9, 1, 1});
  const auto b3 = torch::randn({13}), b5 = torch::randn({13}), b1 = torch::randn({6});
  const std::vector<int64_t> one{1, 1}, zero{0, 0};
  const auto u_inner = u.narrow(2, 1, h + 2).narrow(3, 1, w + 2);  // what the 3x3 conv reads
  const auto u_centre = u.narrow(2, p, h).narrow(3, p, w);
  const auto want_a = (at::conv2d(u_inner, w3, b3, one, zero, one, 1) + at::conv2d(v, w5, b5, one, zero, one, 1) + r).relu();
  const auto want_b = at::conv2d(u_centre, w1, b1, one, zero, one, 1);
  const auto magnitude_a = at::conv2d(u_inner.abs(), w3.abs(), b3.abs(), one, zero, one, 1) +
                           at::conv2d(v.abs(), w5.abs(), b5.abs(), one, zero, one, 1) + r.abs();
  for (const auto isa : dc::runnable_isas()) {
    const auto p3 = dc::pack(w3.data_ptr<float>(), b3.data_ptr<float>(), 13, 9, 3, false, isa);
    const auto p5 = dc::pack(w5.data_ptr<float>(), b5.data_ptr<float>(), 13, 4, 5, false, isa);
    const auto p1 = dc::pack(w1.data_ptr<float>(), b1.data_ptr<float>(), 6, 9, 1, false, isa);
    auto a = torch::empty({2, 13, h, w}), b = torch::empty({2, 6, h, w});
    const int64_t row = u.stride(2);
    dc::run({{planes(a), {{&p3, const_planes(u, row + 1)}, {&p5, const_planes(v)}}, const_planes(r), true},
             {planes(b), {{&p1, const_planes(u, p * row + p)}}, {}, false}},
            2, h, w);
    const double terms = 9 * 9 + 4 * 25 + 3, u32 = 0x1p-24;
    EXPECT_LE(((a - want_a).abs() - magnitude_a * (2.0 * terms * u32 / (1 - terms * u32))).max().item<double>(), 0.0)
        << dc::isa_name(isa);
    const auto magnitude_b = at::conv2d(u_centre.abs(), w1.abs(), b1.abs(), one, zero, one, 1);
    EXPECT_LE(((b - want_b).abs() - magnitude_b * (2.0 * 10 * u32 / (1 - 10 * u32))).max().item<double>(), 0.0)
        << dc::isa_name(isa);
  }
  // Terms of one output must agree in their output channels.
  const auto p1 = dc::pack(w1.data_ptr<float>(), b1.data_ptr<float>(), 6, 9, 1, false, dc::best_isa());
  const auto p3 = dc::pack(w3.data_ptr<float>(), b3.data_ptr<float>(), 13, 9, 3, false, dc::best_isa());
  auto a = torch::empty({2, 13, h, w});
  EXPECT_THROW(dc::run({{planes(a), {{&p3, const_planes(u)}, {&p1, const_planes(u)}}, {}, false}}, 2, h, w),
               ganlite::Error);
}

TEST(DirectConv, Bf16PairsRoundAsLibTorch) {
  torch::manual_seed(21);
  const auto x = torch::randn({2, 5, 3, 7}) * 100;
  auto pairs = torch::empty({2, 3, 3, 7});
  dc::to_bf16_pairs(const_planes(x), planes(pairs), 2, 5, 3, 7);
  const auto words = pairs.view(torch::kInt32);
  const auto bits = x.to(torch::kBFloat16).view(torch::kInt16).to(torch::kInt32).bitwise_and(0xffff);
  for (int c = 0; c < 5; ++c) {
    const auto half = c % 2 == 0 ? words.select(1, c / 2).bitwise_and(0xffff)
                                 : words.select(1, c / 2).__rshift__(16).bitwise_and(0xffff);
    EXPECT_TRUE(torch::equal(half, bits.select(1, c))) << "channel " << c;
  }
  EXPECT_TRUE(torch::equal(words.select(1, 2).__rshift__(16).bitwise_and(0xffff), torch::zeros({2, 3, 7}, torch::kInt32)))
      << "the odd last channel's partner is zero";
}

// The bf16 kernels against LibTorch's fp32 conv of the bf16-rounded inputs and weights: the
// products of bf16 values are exact in fp32, so only the fp32 sums differ (the bound of check()).
TEST(DirectConv, Bf16KernelsMatchLibTorchOnRoundedValues) {
  if (!dc::bf16_supported()) GTEST_SKIP() << "no avx512_bf16 here (or the oneDNN ISA limit is below it)";
  const std::vector<Shape> shapes{{62, 13, 5, 6, 64, false}, {23, 62, 3, 5, 21, false}, {3, 3, 7, 9, 37, false},
                                  {1, 4, 1, 2, 70, false},   {36, 62, 1, 3, 64, false}};
  const std::vector<int64_t> one{1, 1}, zero{0, 0};
  for (const auto& s : shapes) {
    torch::manual_seed(s.in + 31 * s.out);
    const int batch = 2, p = s.k / 2;
    const auto round = [](const torch::Tensor& t) { return t.to(torch::kBFloat16).to(torch::kFloat); };
    const auto x = torch::randn({batch, s.in, s.height + 2 * p, s.width + 2 * p});
    const auto w = torch::randn({s.out, s.in, s.k, s.k}), b = torch::randn({s.out});
    const auto want = at::conv2d(round(x), round(w), b, one, zero, one, 1).relu();
    const auto magnitude = at::conv2d(round(x).abs(), round(w).abs(), b.abs(), one, zero, one, 1);
    auto pairs = torch::empty({batch, (s.in + 1) / 2, s.height + 2 * p, s.width + 2 * p});
    dc::to_bf16_pairs(const_planes(x), planes(pairs), batch, s.in, s.height + 2 * p, s.width + 2 * p);
    const auto packed = dc::pack_bf16(w.contiguous().data_ptr<float>(), b.data_ptr<float>(), s.out, s.in, s.k);
    auto got = torch::empty({batch, s.out, s.height, s.width});
    dc::run(packed, const_planes(pairs), planes(got), batch, s.height, s.width, {false, true});
    const double terms = s.in * s.k * s.k + 1, u = 0x1p-24;
    const auto excess = (got - want).abs() - magnitude * (2.0 * terms * u / (1.0 - terms * u));
    EXPECT_LE(excess.max().item<double>(), 0.0) << describe(s, dc::Isa::avx512_bf16);
  }
}

TEST(DirectConv, ThreadsSplitRowsWithoutChangingAValue) {
  // Each value is computed by the same code whichever thread takes its rows: bit-identical.
  const Shape s{19, 14, 3, 33, 40, false};
  torch::manual_seed(9);
  const auto x = torch::randn({1, s.in, s.height + 2, s.width + 2});
  const auto w = torch::randn({s.out, s.in, 3, 3});
  const auto packed = dc::pack(w.data_ptr<float>(), nullptr, s.out, s.in, 3, false, dc::best_isa());
  const int threads = at::get_num_threads();
  torch::Tensor outputs[2];
  for (int t = 0; t < 2; ++t) {
    at::set_num_threads(t == 0 ? 1 : 3);
    outputs[t] = torch::empty({1, s.out, s.height, s.width});
    dc::run(packed, const_planes(x), planes(outputs[t]), 1, s.height, s.width, {false, true});
  }
  at::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(outputs[0], outputs[1]));
}

TEST(DirectConv, PacksBalancedBlocks) {
  const auto w = torch::randn({13, 4, 3, 3});
  for (const auto isa : dc::runnable_isas()) {
    const auto p = dc::pack(w.data_ptr<float>(), nullptr, 13, 4, 3, false, isa);
    int covered = 0, smallest = 13, largest = 0;
    for (const auto& b : p.blocks) {
      EXPECT_EQ(b.first, covered) << dc::isa_name(isa);
      covered += b.count;
      smallest = std::min(smallest, b.count);
      largest = std::max(largest, b.count);
    }
    EXPECT_EQ(covered, 13) << dc::isa_name(isa);
    EXPECT_LE(largest - smallest, 1) << dc::isa_name(isa);
    EXPECT_EQ(p.bias, std::vector<float>(13, 0.0f)) << "no bias reads as zeros";
  }
  EXPECT_THROW(dc::pack(w.data_ptr<float>(), nullptr, 13, 4, 3, true, dc::best_isa()), ganlite::Error)
      << "a depthwise conv needs as many inputs as outputs";
}

TEST(DirectConv, RingsMatchLibTorchPads) {
  torch::manual_seed(2);
  const int64_t h = 6, w = 9;
  const auto x = torch::randn({2, 3, h, w});
  for (const int64_t p : {1, 2, 3}) {
    const std::pair<dc::Ring, torch::Tensor> cases[] = {
        {dc::Ring::reflect, at::reflection_pad2d(x, {p, p, p, p})},
        {dc::Ring::replicate, at::replication_pad2d(x, {p, p, p, p})},
        {dc::Ring::zero, at::constant_pad_nd(x, {p, p, p, p}, 0.0)},
    };
    for (const auto& [ring, want] : cases) {
      auto padded = torch::full({2, 3, h + 2 * p, w + 2 * p}, 5.0f);
      padded.narrow(2, p, h).narrow(3, p, w).copy_(x);
      dc::fill_ring(planes(padded), 2, 3, static_cast<int>(h), static_cast<int>(w), static_cast<int>(p), ring);
      EXPECT_TRUE(torch::equal(padded, want)) << "pad " << p << " ring " << static_cast<int>(ring);
    }
  }
  auto small = torch::zeros({1, 1, 2 + 4, 2 + 4});
  EXPECT_THROW(dc::fill_ring(planes(small), 1, 1, 2, 2, 2, dc::Ring::reflect), ganlite::Error)
      << "reflection needs an input larger than the pad";
}

TEST(DirectConv, BestIsaIsRunnable) {
  const auto isas = dc::runnable_isas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.front(), dc::Isa::portable);
  EXPECT_NE(std::find(isas.begin(), isas.end(), dc::best_isa()), isas.end());
}

}  // namespace
