// CAT's kernel alignment term (methods.md 3.2) as a registered distillation method.
#pragma once
#include "ganlite/compress/distill_loss.h"

namespace ganlite::compress {

inline constexpr const char* kKaMethod = "ka";
inline constexpr int64_t kMaxKaChunks = 1024;

// -sum over taps of kernel_alignment(student tap, teacher tap). A batch of one sample (e.g. the
// last of an epoch) has KA exactly 1 per tap: the constant is returned, no gradient.
// `chunks` > 1 (--ka-chunks): per tap, the sum of the KAs of the batch's chunks as CAT's
// DataParallel computes it over that many GPUs (chunked_kernel_alignment, docs/fidelity.md).
class KaTermImpl : public DistillTerm {
 public:
  explicit KaTermImpl(int64_t chunks = 1) : chunks_(chunks) {}
  std::string method() const override { return kKaMethod; }
  torch::Tensor loss(const DistillInputs& inputs) override;
  int64_t chunks() const { return chunks_; }

 private:
  int64_t chunks_ = 1;
};
TORCH_MODULE(KaTerm);

}  // namespace ganlite::compress
