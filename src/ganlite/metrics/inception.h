// The FID Inception-v3 (pytorch-fid's fid_inception_v3 + InceptionV3 wrapper, 2048-d pool3
// features), with the module names of `pt_inception-2015-12-05-6726825d.pth` so that file loads
// key for key. Differences from torchvision's Inception-v3, as in the TF FID graph: the average
// pools of Mixed_5b..Mixed_7b do not count padding, Mixed_7c pools with max, BatchNorm eps 1e-3.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <filesystem>
#include <string>
#include <vector>

namespace ganlite::metrics {

// conv (no bias) -> BatchNorm(eps 1e-3) -> ReLU; keys `conv.weight`, `bn.*`.
struct BasicConv2dImpl : torch::nn::Module {
  BasicConv2dImpl(int64_t in, int64_t out, torch::ExpandingArray<2> kernel, torch::ExpandingArray<2> stride = 1,
                  torch::ExpandingArray<2> padding = 0);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(BasicConv2d);

// Mixed_5b/5c/5d (FIDInceptionA: avg pool without padding in the count).
struct InceptionAImpl : torch::nn::Module {
  InceptionAImpl(int64_t in, int64_t pool_features);
  torch::Tensor forward(const torch::Tensor& x);
  BasicConv2d branch1x1{nullptr}, branch5x5_1{nullptr}, branch5x5_2{nullptr}, branch3x3dbl_1{nullptr},
      branch3x3dbl_2{nullptr}, branch3x3dbl_3{nullptr}, branch_pool{nullptr};
};
TORCH_MODULE(InceptionA);

// Mixed_6a (torchvision's InceptionB, unchanged).
struct InceptionBImpl : torch::nn::Module {
  explicit InceptionBImpl(int64_t in);
  torch::Tensor forward(const torch::Tensor& x);
  BasicConv2d branch3x3{nullptr}, branch3x3dbl_1{nullptr}, branch3x3dbl_2{nullptr}, branch3x3dbl_3{nullptr};
};
TORCH_MODULE(InceptionB);

// Mixed_6b..6e (FIDInceptionC).
struct InceptionCImpl : torch::nn::Module {
  InceptionCImpl(int64_t in, int64_t channels_7x7);
  torch::Tensor forward(const torch::Tensor& x);
  BasicConv2d branch1x1{nullptr}, branch7x7_1{nullptr}, branch7x7_2{nullptr}, branch7x7_3{nullptr},
      branch7x7dbl_1{nullptr}, branch7x7dbl_2{nullptr}, branch7x7dbl_3{nullptr}, branch7x7dbl_4{nullptr},
      branch7x7dbl_5{nullptr}, branch_pool{nullptr};
};
TORCH_MODULE(InceptionC);

// Mixed_7a (torchvision's InceptionD, unchanged).
struct InceptionDImpl : torch::nn::Module {
  explicit InceptionDImpl(int64_t in);
  torch::Tensor forward(const torch::Tensor& x);
  BasicConv2d branch3x3_1{nullptr}, branch3x3_2{nullptr}, branch7x7x3_1{nullptr}, branch7x7x3_2{nullptr},
      branch7x7x3_3{nullptr}, branch7x7x3_4{nullptr};
};
TORCH_MODULE(InceptionD);

// Mixed_7b (FIDInceptionE_1: avg pool, padding not counted) and Mixed_7c (FIDInceptionE_2: max pool).
struct InceptionEImpl : torch::nn::Module {
  InceptionEImpl(int64_t in, bool max_pool);
  torch::Tensor forward(const torch::Tensor& x);
  bool max_pool;
  BasicConv2d branch1x1{nullptr}, branch3x3_1{nullptr}, branch3x3_2a{nullptr}, branch3x3_2b{nullptr},
      branch3x3dbl_1{nullptr}, branch3x3dbl_2{nullptr}, branch3x3dbl_3a{nullptr}, branch3x3dbl_3b{nullptr},
      branch_pool{nullptr};
};
TORCH_MODULE(InceptionE);

struct FidInceptionV3Impl : torch::nn::Module {
  FidInceptionV3Impl();
  // x: [N, 3, H, W] float RGB in [0, 1]. Resized bilinearly (align_corners=false) to 299x299,
  // scaled to [-1, 1]; returns the 2048-d pool3 features [N, 2048].
  torch::Tensor forward(const torch::Tensor& x);

  BasicConv2d Conv2d_1a_3x3{nullptr}, Conv2d_2a_3x3{nullptr}, Conv2d_2b_3x3{nullptr}, Conv2d_3b_1x1{nullptr},
      Conv2d_4a_3x3{nullptr};
  InceptionA Mixed_5b{nullptr}, Mixed_5c{nullptr}, Mixed_5d{nullptr};
  InceptionB Mixed_6a{nullptr};
  InceptionC Mixed_6b{nullptr}, Mixed_6c{nullptr}, Mixed_6d{nullptr}, Mixed_6e{nullptr};
  InceptionD Mixed_7a{nullptr};
  InceptionE Mixed_7b{nullptr}, Mixed_7c{nullptr};
  torch::nn::Linear fc{nullptr};  // the 1008-way classifier of the weights file; loaded, unused
};
TORCH_MODULE(FidInceptionV3);

// Random weights that keep activations alive through the 94 conv layers (He-normal convs,
// BatchNorm statistics near identity), so that features depend on the image: for tests and
// benchmarks, since the real weights cannot be downloaded here.
void init_random_inception(FidInceptionV3& net, uint64_t seed);

// Builds the network, loads a zip state dict with pytorch-fid's key names (num_batches_tracked
// may be absent), moves it to `device` in eval mode. A missing or unexpected key or a shape
// mismatch throws Error naming the key and the file.
FidInceptionV3 load_fid_inception(const std::filesystem::path& path, const torch::Device& device);

// Pool3 features [N, 2048] (float64, CPU) of images [N, 3, H, W]: uint8, or float in [-1, 1]
// that is quantised to uint8 first (metrics::quantize_to_uint8). Runs in batches on the
// network's device with a progress bar labelled `label` (none when empty).
torch::Tensor inception_features(FidInceptionV3& net, const torch::Tensor& images, int64_t batch_size,
                                 const std::string& label = "");

// Features of image files (read as 8-bit RGB; sizes may differ: each is resized to 299 alone).
torch::Tensor inception_features_of_files(FidInceptionV3& net, const std::vector<std::filesystem::path>& files,
                                          int64_t batch_size, const std::string& label = "");

// Features of every image in `dir` (data::list_images order). A folder with fewer than 2 images
// throws Error naming it and `purpose` ("FID", "KID", ...), since no statistics exist then.
torch::Tensor inception_features_of_folder(FidInceptionV3& net, const std::filesystem::path& dir, int64_t batch_size,
                                           const std::string& purpose, const std::string& label = "");

}  // namespace ganlite::metrics
