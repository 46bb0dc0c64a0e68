// Attention transfer (Zagoruyko & Komodakis, "Paying More Attention to Attention", ICLR 2017) as
// a registered distillation method, computed as the authors' public code does (docs/fidelity.md):
//   a(F) = normalize_L2( mean over channels of F^2, flattened per sample )      [N, H*W]
//   L_at = sum over taps of mean over N*H*W of (a(S_i) - a(T_i))^2
// Channel counts of student and teacher may differ (the map averages them away): no adapter.
// Default weight 500: the public code's beta / 2 with beta = 1e3 on the same sum over groups.
#pragma once
#include "ganlite/compress/distill_loss.h"

namespace ganlite::compress {

inline constexpr const char* kAtMethod = "at";

// The attention map of a feature map [N, C, H, W]: [N, H*W], each row of unit L2 norm (rows of
// zeros stay zero, as F.normalize with eps 1e-12).
torch::Tensor attention_map(const torch::Tensor& features);

class AtTermImpl : public DistillTerm {
 public:
  std::string method() const override { return kAtMethod; }
  torch::Tensor loss(const DistillInputs& inputs) override;
};
TORCH_MODULE(AtTerm);

}  // namespace ganlite::compress
