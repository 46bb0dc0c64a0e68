// torchvision VGG feature stacks for perceptual losses, built from a cfg list (torchvision's
// models/vgg.py `cfgs`: widths, 'M' = 2x2 max-pool) up to the deepest layer a loss reads, and
// loaded from a user-supplied torchvision state dict (`features.<i>.weight` / `.bias`; other keys
// ignored, so the full ImageNet file or one holding just those convs both work). The network is
// frozen: eval mode, no gradients to its weights.
//
// SPADE's VGG loss (NVlabs/SPADE models/networks/loss.py, VGGLoss; architecture VGG19):
// sum over relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 (torchvision features 1, 6, 11, 20, 29)
// of w_i * L1(phi_i(fake), phi_i(real)) with w = 1/32, 1/16, 1/8, 1/4, 1, the real side without
// gradient. SPADE feeds the images in [-1, 1] as they are, without ImageNet normalisation; so do we.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ganlite::train {

struct VggSpec {
  std::string name;            // "vgg19": the messages' name
  std::vector<int64_t> cfg;    // conv widths, 0 for a max-pool
  std::vector<size_t> taps;    // `features` indices whose outputs are returned, increasing
  // The input is fed as x * input_scale + input_shift (SPADE: as is; DCD: (x + 1) / 2).
  double input_scale = 1.0;
  double input_shift = 0.0;
};

// torchvision vgg19 (cfg "E") up to relu5_1, tapping relu1_1 .. relu5_1.
VggSpec vgg19_relu_x_1();

class VggFeaturesImpl : public torch::nn::Module {
 public:
  explicit VggFeaturesImpl(const VggSpec& spec);
  // The tapped activations of `x` (scaled as the spec says), in tap order.
  std::vector<torch::Tensor> forward(const torch::Tensor& x);

  torch::nn::Sequential features{nullptr};

 private:
  std::vector<size_t> taps_;
  double input_scale_ = 1.0;
  double input_shift_ = 0.0;
};
TORCH_MODULE(VggFeatures);

// Loads `spec`'s convs from a torchvision state dict (.pth from torch.save, or .safetensors) onto
// `device`, frozen. Throws Error naming the file and a missing key or wrong shape.
VggFeatures load_vgg_features(const std::string& path, const VggSpec& spec, const torch::Device& device);

// SPADE's VGG19 perceptual loss (weights above), unscaled by lambda_vgg.
class SpadeVggLoss {
 public:
  SpadeVggLoss(const std::string& weights_path, const torch::Device& device);
  torch::Tensor operator()(const torch::Tensor& fake, const torch::Tensor& real);

 private:
  VggFeatures vgg_{nullptr};
};

}  // namespace ganlite::train
