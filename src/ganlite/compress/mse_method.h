// GAN Compression's feature MSE with learned adaptors as a registered distillation method.
#pragma once
#include <torch/nn/modules/conv.h>

#include <vector>

#include "ganlite/compress/distill_loss.h"

namespace ganlite::compress {

inline constexpr const char* kMseMethod = "mse";

// Per tap a learned 1x1 conv (with bias; weights N(0, 0.02), biases 0, as GAN Compression's
// init_net) maps the student width to the teacher's; sum over taps of MSE to the teacher feature.
class MseTermImpl : public DistillTerm {
 public:
  explicit MseTermImpl(const DistillContext& context);
  std::string method() const override { return kMseMethod; }
  torch::Tensor loss(const DistillInputs& inputs) override;

  std::vector<torch::nn::Conv2d> adaptors;  // registered as "0", "1", ...
};
TORCH_MODULE(MseTerm);

}  // namespace ganlite::compress
