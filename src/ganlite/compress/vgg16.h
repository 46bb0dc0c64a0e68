// The first two stages of torchvision's VGG16 (`features.0` .. `features.8`, up to relu2_2), for
// the perceptual terms of the released DCD code (methods.md 3.4). Only these layers are built and
// loaded, so a full ImageNet vgg16 state dict (528 MB) or a file holding just
// features.{0,2,5,7}.{weight,bias} both work.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <string>

namespace ganlite::compress {

class Vgg16FeaturesImpl : public torch::nn::Module {
 public:
  // features = [conv 3->64, ReLU, conv 64->64, ReLU, maxpool 2, conv 64->128, ReLU, conv 128->128, ReLU].
  Vgg16FeaturesImpl();
  // Images in [-1, 1] -> relu2_2 activations [N, 128, H/2, W/2]; the ImageNet mean / std
  // normalisation torchvision's weights expect is applied first.
  torch::Tensor forward(const torch::Tensor& images);

  torch::nn::Sequential features{nullptr};
};
TORCH_MODULE(Vgg16Features);

// Loads features.{0,2,5,7}.{weight,bias} from a torchvision vgg16 state dict (.pth written by
// torch.save, or .safetensors); every other key is ignored. The network is frozen (eval mode,
// no gradients to its weights) on `device`. Throws Error naming the file and a missing key or a
// wrong shape.
Vgg16Features load_vgg16_features(const std::string& path, const torch::Device& device);

// Gram matrices of features [N, C, H, W] -> [N, C, C], divided by C * H * W.
torch::Tensor gram_matrix(const torch::Tensor& features);

}  // namespace ganlite::compress
