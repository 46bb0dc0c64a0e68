// torchvision's VGG16 `features.0` .. `features.22` (up to relu4_3), for the perceptual terms of
// the released DCD code (methods.md 3.4; poopit/DCD-official utils/vgg.py, `Vgg16`, slices the
// pretrained features at 4, 9, 16 and 23). Only these layers are built and loaded, so a full
// ImageNet vgg16 state dict (528 MB) or a file holding just the ten convs' weights both work.
// The stack and its loader are train/vgg_loss.h's, with VGG16's spec.
#pragma once
#include <torch/types.h>

#include <string>

#include "ganlite/train/vgg_loss.h"

namespace ganlite::compress {

// The activations the release returns, in its order (relu1_2, relu2_2, relu3_3, relu4_3).
inline constexpr size_t kVggRelu2_2 = 1;
inline constexpr size_t kVggStyleLayers = 4;

// forward: images in [-1, 1] -> {relu1_2 [N,64,H,W], relu2_2 [N,128,H/2,W/2], relu3_3
// [N,256,H/4,W/4], relu4_3 [N,512,H/8,W/8]}. The input is (x + 1) / 2, without ImageNet mean /
// std, as the release feeds it (utils/vgg_feature.py, `VGGFeature.__call__`).
using Vgg16Features = train::VggFeatures;

// torchvision's vgg16 cfg "D" up to relu4_3 (the last pool lies beyond and is left out), tapping
// the ReLUs at features 3, 8, 15 and 22.
train::VggSpec vgg16_relu_x_3();

// Loads features.{i}.{weight,bias} for the ten convs from a torchvision vgg16 state dict (.pth
// written by torch.save, or .safetensors); every other key is ignored. The network is frozen
// (eval mode, no gradients to its weights) on `device`. Throws Error naming the file and a
// missing key or a wrong shape.
Vgg16Features load_vgg16_features(const std::string& path, const torch::Device& device);

// Gram matrices of features [N, C, H, W] -> [N, C, C], divided by C * H * W (the release's
// `gram`, distillers/cycleganbest_distiller.py).
torch::Tensor gram_matrix(const torch::Tensor& features);

}  // namespace ganlite::compress
