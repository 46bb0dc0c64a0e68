#include "ganlite/metrics/inception.h"

#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <map>

#include "ganlite/data/image_io.h"
#include "ganlite/io/pth.h"
#include "ganlite/metrics/image_quality.h"
#include "ganlite/util/error.h"
#include "ganlite/util/progress.h"

namespace ganlite::metrics {

namespace F = torch::nn::functional;

namespace {

constexpr int64_t kInputSize = 299;
using K = torch::ExpandingArray<2>;  // braced kernel sizes cannot pass through ModuleHolder's forwarding constructor

torch::Tensor avg_pool_3x3_no_pad_count(const torch::Tensor& x) {
  // TF's average pool ignores the zero padding in its mean.
  return F::avg_pool2d(x, F::AvgPool2dFuncOptions(3).stride(1).padding(1).count_include_pad(false));
}

torch::Tensor max_pool_3x3_s2(const torch::Tensor& x) { return F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(2)); }

}  // namespace

BasicConv2dImpl::BasicConv2dImpl(int64_t in, int64_t out, torch::ExpandingArray<2> kernel,
                                 torch::ExpandingArray<2> stride, torch::ExpandingArray<2> padding) {
  conv = register_module(
      "conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(false)));
  bn = register_module("bn", torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(out).eps(0.001)));
}

torch::Tensor BasicConv2dImpl::forward(const torch::Tensor& x) { return torch::relu(bn(conv(x))); }

InceptionAImpl::InceptionAImpl(int64_t in, int64_t pool_features) {
  branch1x1 = register_module("branch1x1", BasicConv2d(in, 64, 1));
  branch5x5_1 = register_module("branch5x5_1", BasicConv2d(in, 48, 1));
  branch5x5_2 = register_module("branch5x5_2", BasicConv2d(48, 64, 5, 1, 2));
  branch3x3dbl_1 = register_module("branch3x3dbl_1", BasicConv2d(in, 64, 1));
  branch3x3dbl_2 = register_module("branch3x3dbl_2", BasicConv2d(64, 96, 3, 1, 1));
  branch3x3dbl_3 = register_module("branch3x3dbl_3", BasicConv2d(96, 96, 3, 1, 1));
  branch_pool = register_module("branch_pool", BasicConv2d(in, pool_features, 1));
}

torch::Tensor InceptionAImpl::forward(const torch::Tensor& x) {
  auto b1 = branch1x1(x);
  auto b5 = branch5x5_2(branch5x5_1(x));
  auto b3 = branch3x3dbl_3(branch3x3dbl_2(branch3x3dbl_1(x)));
  auto bp = branch_pool(avg_pool_3x3_no_pad_count(x));
  return torch::cat({b1, b5, b3, bp}, 1);
}

InceptionBImpl::InceptionBImpl(int64_t in) {
  branch3x3 = register_module("branch3x3", BasicConv2d(in, 384, 3, 2));
  branch3x3dbl_1 = register_module("branch3x3dbl_1", BasicConv2d(in, 64, 1));
  branch3x3dbl_2 = register_module("branch3x3dbl_2", BasicConv2d(64, 96, 3, 1, 1));
  branch3x3dbl_3 = register_module("branch3x3dbl_3", BasicConv2d(96, 96, 3, 2));
}

torch::Tensor InceptionBImpl::forward(const torch::Tensor& x) {
  auto b3 = branch3x3(x);
  auto bd = branch3x3dbl_3(branch3x3dbl_2(branch3x3dbl_1(x)));
  return torch::cat({b3, bd, max_pool_3x3_s2(x)}, 1);
}

InceptionCImpl::InceptionCImpl(int64_t in, int64_t c7) {
  branch1x1 = register_module("branch1x1", BasicConv2d(in, 192, 1));
  branch7x7_1 = register_module("branch7x7_1", BasicConv2d(in, c7, 1));
  branch7x7_2 = register_module("branch7x7_2", BasicConv2d(c7, c7, K{1, 7}, 1, K{0, 3}));
  branch7x7_3 = register_module("branch7x7_3", BasicConv2d(c7, 192, K{7, 1}, 1, K{3, 0}));
  branch7x7dbl_1 = register_module("branch7x7dbl_1", BasicConv2d(in, c7, 1));
  branch7x7dbl_2 = register_module("branch7x7dbl_2", BasicConv2d(c7, c7, K{7, 1}, 1, K{3, 0}));
  branch7x7dbl_3 = register_module("branch7x7dbl_3", BasicConv2d(c7, c7, K{1, 7}, 1, K{0, 3}));
  branch7x7dbl_4 = register_module("branch7x7dbl_4", BasicConv2d(c7, c7, K{7, 1}, 1, K{3, 0}));
  branch7x7dbl_5 = register_module("branch7x7dbl_5", BasicConv2d(c7, 192, K{1, 7}, 1, K{0, 3}));
  branch_pool = register_module("branch_pool", BasicConv2d(in, 192, 1));
}

torch::Tensor InceptionCImpl::forward(const torch::Tensor& x) {
  auto b1 = branch1x1(x);
  auto b7 = branch7x7_3(branch7x7_2(branch7x7_1(x)));
  auto bd = branch7x7dbl_5(branch7x7dbl_4(branch7x7dbl_3(branch7x7dbl_2(branch7x7dbl_1(x)))));
  auto bp = branch_pool(avg_pool_3x3_no_pad_count(x));
  return torch::cat({b1, b7, bd, bp}, 1);
}

InceptionDImpl::InceptionDImpl(int64_t in) {
  branch3x3_1 = register_module("branch3x3_1", BasicConv2d(in, 192, 1));
  branch3x3_2 = register_module("branch3x3_2", BasicConv2d(192, 320, 3, 2));
  branch7x7x3_1 = register_module("branch7x7x3_1", BasicConv2d(in, 192, 1));
  branch7x7x3_2 = register_module("branch7x7x3_2", BasicConv2d(192, 192, K{1, 7}, 1, K{0, 3}));
  branch7x7x3_3 = register_module("branch7x7x3_3", BasicConv2d(192, 192, K{7, 1}, 1, K{3, 0}));
  branch7x7x3_4 = register_module("branch7x7x3_4", BasicConv2d(192, 192, 3, 2));
}

torch::Tensor InceptionDImpl::forward(const torch::Tensor& x) {
  auto b3 = branch3x3_2(branch3x3_1(x));
  auto b7 = branch7x7x3_4(branch7x7x3_3(branch7x7x3_2(branch7x7x3_1(x))));
  return torch::cat({b3, b7, max_pool_3x3_s2(x)}, 1);
}

InceptionEImpl::InceptionEImpl(int64_t in, bool max_pool_branch) : max_pool(max_pool_branch) {
  branch1x1 = register_module("branch1x1", BasicConv2d(in, 320, 1));
  branch3x3_1 = register_module("branch3x3_1", BasicConv2d(in, 384, 1));
  branch3x3_2a = register_module("branch3x3_2a", BasicConv2d(384, 384, K{1, 3}, 1, K{0, 1}));
  branch3x3_2b = register_module("branch3x3_2b", BasicConv2d(384, 384, K{3, 1}, 1, K{1, 0}));
  branch3x3dbl_1 = register_module("branch3x3dbl_1", BasicConv2d(in, 448, 1));
  branch3x3dbl_2 = register_module("branch3x3dbl_2", BasicConv2d(448, 384, 3, 1, 1));
  branch3x3dbl_3a = register_module("branch3x3dbl_3a", BasicConv2d(384, 384, K{1, 3}, 1, K{0, 1}));
  branch3x3dbl_3b = register_module("branch3x3dbl_3b", BasicConv2d(384, 384, K{3, 1}, 1, K{1, 0}));
  branch_pool = register_module("branch_pool", BasicConv2d(in, 192, 1));
}

torch::Tensor InceptionEImpl::forward(const torch::Tensor& x) {
  auto b1 = branch1x1(x);
  auto s3 = branch3x3_1(x);
  auto b3 = torch::cat({branch3x3_2a(s3), branch3x3_2b(s3)}, 1);
  auto sd = branch3x3dbl_2(branch3x3dbl_1(x));
  auto bd = torch::cat({branch3x3dbl_3a(sd), branch3x3dbl_3b(sd)}, 1);
  // FIDInceptionE_2 (Mixed_7c) max-pools here, as the TF graph behind the FID weights does.
  auto pooled = max_pool ? F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(1).padding(1))
                         : avg_pool_3x3_no_pad_count(x);
  return torch::cat({b1, b3, bd, branch_pool(pooled)}, 1);
}

FidInceptionV3Impl::FidInceptionV3Impl() {
  Conv2d_1a_3x3 = register_module("Conv2d_1a_3x3", BasicConv2d(3, 32, 3, 2));
  Conv2d_2a_3x3 = register_module("Conv2d_2a_3x3", BasicConv2d(32, 32, 3));
  Conv2d_2b_3x3 = register_module("Conv2d_2b_3x3", BasicConv2d(32, 64, 3, 1, 1));
  Conv2d_3b_1x1 = register_module("Conv2d_3b_1x1", BasicConv2d(64, 80, 1));
  Conv2d_4a_3x3 = register_module("Conv2d_4a_3x3", BasicConv2d(80, 192, 3));
  Mixed_5b = register_module("Mixed_5b", InceptionA(192, 32));
  Mixed_5c = register_module("Mixed_5c", InceptionA(256, 64));
  Mixed_5d = register_module("Mixed_5d", InceptionA(288, 64));
  Mixed_6a = register_module("Mixed_6a", InceptionB(288));
  Mixed_6b = register_module("Mixed_6b", InceptionC(768, 128));
  Mixed_6c = register_module("Mixed_6c", InceptionC(768, 160));
  Mixed_6d = register_module("Mixed_6d", InceptionC(768, 160));
  Mixed_6e = register_module("Mixed_6e", InceptionC(768, 192));
  Mixed_7a = register_module("Mixed_7a", InceptionD(768));
  Mixed_7b = register_module("Mixed_7b", InceptionE(1280, false));
  Mixed_7c = register_module("Mixed_7c", InceptionE(2048, true));
  fc = register_module("fc", torch::nn::Linear(2048, 1008));
}

torch::Tensor FidInceptionV3Impl::forward(const torch::Tensor& input) {
  if (input.dim() != 4 || input.size(1) != 3) throw Error("inception: expected [N, 3, H, W] images");
  auto x = input;
  if (x.size(2) != kInputSize || x.size(3) != kInputSize) {
    x = F::interpolate(x, F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{kInputSize, kInputSize})
                              .mode(torch::kBilinear)
                              .align_corners(false));
  }
  // Channels-last from here (after the NCHW resize, so every caller resizes alike) lets oneDNN
  // run the convs without per-layer reorders (1.45x measured): the same fp32 arithmetic.
  x = (2 * x - 1).contiguous(at::MemoryFormat::ChannelsLast);
  x = max_pool_3x3_s2(Conv2d_2b_3x3(Conv2d_2a_3x3(Conv2d_1a_3x3(x))));
  x = max_pool_3x3_s2(Conv2d_4a_3x3(Conv2d_3b_1x1(x)));
  x = Mixed_6e(Mixed_6d(Mixed_6c(Mixed_6b(Mixed_6a(Mixed_5d(Mixed_5c(Mixed_5b(x))))))));
  x = Mixed_7c(Mixed_7b(Mixed_7a(x)));
  return F::adaptive_avg_pool2d(x, F::AdaptiveAvgPool2dFuncOptions(1)).flatten(1);
}

void init_random_inception(FidInceptionV3& net, uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto generator = at::detail::createCPUGenerator(seed);
  for (auto& p : net->named_parameters()) {
    auto& t = p.value();
    const auto& name = p.key();
    torch::Tensor value;
    if (t.dim() == 4) {
      const double fan_in = static_cast<double>(t.size(1) * t.size(2) * t.size(3));
      value = at::normal(0.0, std::sqrt(2.0 / fan_in), t.sizes(), generator);
    } else if (name.find("bn.weight") != std::string::npos) {
      value = at::ones(t.sizes());
    } else {
      value = at::normal(0.0, 0.01, t.sizes(), generator);  // biases, fc
    }
    t.copy_(value);
  }
  for (auto& b : net->named_buffers()) {
    if (b.key().find("running_mean") != std::string::npos) b.value().copy_(at::normal(0.0, 0.1, b.value().sizes(), generator));
    if (b.key().find("running_var") != std::string::npos) {
      b.value().copy_(at::empty(b.value().sizes()).uniform_(0.5, 1.5, generator));
    }
  }
}

FidInceptionV3 load_fid_inception(const std::filesystem::path& path, const torch::Device& device) {
  const auto file = io::load_pth_state_dict(path);
  FidInceptionV3 net;
  std::map<std::string, torch::Tensor> targets;
  for (const auto& p : net->named_parameters()) targets.emplace(p.key(), p.value());
  for (const auto& b : net->named_buffers()) targets.emplace(b.key(), b.value());
  std::map<std::string, bool> loaded;
  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : file) {
    const auto it = targets.find(name);
    if (it == targets.end()) {
      throw Error(path.string() + ": unexpected key '" + name +
                  "' (not part of the FID Inception-v3; expected pytorch-fid's pt_inception-2015-12-05 weights)");
    }
    if (it->second.sizes() != tensor.sizes()) {
      throw Error(path.string() + ": key '" + name + "' has shape " + c10::str(tensor.sizes()) + ", expected " +
                  c10::str(it->second.sizes()));
    }
    it->second.copy_(tensor.to(it->second.scalar_type()));
    loaded[name] = true;
  }
  for (const auto& [name, tensor] : targets) {
    const bool optional = name.size() >= 19 && name.compare(name.size() - 19, 19, "num_batches_tracked") == 0;
    if (!loaded.count(name) && !optional) {
      throw Error(path.string() + ": missing key '" + name + "' (not a complete FID Inception-v3 state dict)");
    }
  }
  net->to(device);
  net->eval();
  return net;
}

namespace {

torch::Tensor run_batch(FidInceptionV3& net, const torch::Tensor& unit_images) {
  c10::InferenceMode guard;
  return net->forward(unit_images).to(torch::kCPU, torch::kFloat64);
}

torch::Device device_of(FidInceptionV3& net) { return net->parameters().front().device(); }

}  // namespace

torch::Tensor inception_features(FidInceptionV3& net, const torch::Tensor& images, int64_t batch_size,
                                 const std::string& label) {
  if (images.dim() != 4 || images.size(1) != 3) {
    throw Error("inception features: expected [N, 3, H, W] images, got " + c10::str(images.sizes()));
  }
  if (batch_size < 1) throw UsageError("batch size must be >= 1, got " + std::to_string(batch_size));
  const auto device = device_of(net);
  const int64_t n = images.size(0);
  std::unique_ptr<ProgressBar> bar;
  if (!label.empty()) bar = std::make_unique<ProgressBar>(n, label);
  std::vector<torch::Tensor> out;
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t end = std::min(n, start + batch_size);
    auto batch = quantize_to_uint8(images.slice(0, start, end)).to(device).to(torch::kFloat32) / 255.0;
    out.push_back(run_batch(net, batch));
    if (bar) bar->update(end);
  }
  if (bar) bar->finish();
  if (out.empty()) return torch::empty({0, 2048}, torch::kFloat64);
  return torch::cat(out, 0);
}

torch::Tensor inception_features_of_files(FidInceptionV3& net, const std::vector<std::filesystem::path>& files,
                                          int64_t batch_size, const std::string& label) {
  if (batch_size < 1) throw UsageError("batch size must be >= 1, got " + std::to_string(batch_size));
  const auto device = device_of(net);
  const auto n = static_cast<int64_t>(files.size());
  std::unique_ptr<ProgressBar> bar;
  if (!label.empty()) bar = std::make_unique<ProgressBar>(n, label);
  std::vector<torch::Tensor> out;
  std::vector<torch::Tensor> batch;
  auto flush = [&] {
    if (batch.empty()) return;
    out.push_back(run_batch(net, torch::stack(batch)));
    batch.clear();
  };
  for (int64_t i = 0; i < n; ++i) {
    cv::Mat rgb = data::read_image_rgb(files[static_cast<size_t>(i)]);
    if (!rgb.isContinuous()) rgb = rgb.clone();
    auto t = torch::from_blob(rgb.data, {rgb.rows, rgb.cols, 3}, torch::kUInt8)
                 .permute({2, 0, 1})
                 .unsqueeze(0)
                 .to(device)
                 .to(torch::kFloat32) /
             255.0;
    // Resize one by one so that files of different sizes can share a batch.
    if (t.size(2) != kInputSize || t.size(3) != kInputSize) {
      t = F::interpolate(t, F::InterpolateFuncOptions()
                                .size(std::vector<int64_t>{kInputSize, kInputSize})
                                .mode(torch::kBilinear)
                                .align_corners(false));
    }
    batch.push_back(t.squeeze(0));
    if (static_cast<int64_t>(batch.size()) == batch_size) flush();
    if (bar) bar->update(i + 1);
  }
  flush();
  if (bar) bar->finish();
  if (out.empty()) return torch::empty({0, 2048}, torch::kFloat64);
  return torch::cat(out, 0);
}

torch::Tensor inception_features_of_folder(FidInceptionV3& net, const std::filesystem::path& dir, int64_t batch_size,
                                           const std::string& purpose, const std::string& label) {
  const auto files = data::list_images(dir);
  if (files.size() < 2) {
    throw Error(dir.string() + ": " + purpose + " needs at least 2 images, found " + std::to_string(files.size()));
  }
  return inception_features_of_files(net, files, batch_size, label);
}

}  // namespace ganlite::metrics
