// CAT's kernel alignment term (methods.md 3.2) as a registered distillation method.
#pragma once
#include "ganlite/compress/distill_loss.h"

namespace ganlite::compress {

inline constexpr const char* kKaMethod = "ka";

// -sum over taps of kernel_alignment(student tap, teacher tap). A batch of one sample (e.g. the
// last of an epoch) has KA exactly 1 per tap: the constant is returned, no gradient.
class KaTermImpl : public DistillTerm {
 public:
  std::string method() const override { return kKaMethod; }
  torch::Tensor loss(const DistillInputs& inputs) override;
};
TORCH_MODULE(KaTerm);

}  // namespace ganlite::compress
