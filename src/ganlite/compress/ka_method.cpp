#include "ganlite/compress/ka_method.h"

#include <torch/torch.h>

#include "ganlite/compress/kernel_alignment.h"

namespace ganlite::compress {

torch::Tensor KaTermImpl::loss(const DistillInputs& in) {
  check_taps(in, kKaMethod);
  const auto& s = in.student->taps;
  const auto& t = in.teacher->taps;
  if (in.real_a.size(0) < 2) {
    // A 1x1 Gram matrix: KA is identically 1, with zero gradient.
    return torch::full({}, -static_cast<double>(s.size()), in.real_a.options());
  }
  torch::Tensor total = torch::zeros({}, in.real_a.options());
  for (size_t i = 0; i < s.size(); ++i) total = total - chunked_kernel_alignment(s[i], t[i], chunks_);
  return total;
}

DistillMethod ka_distill_method() {
  DistillMethod m;
  m.name = kKaMethod;
  m.description = "CAT's kernel alignment of the taps";
  m.weight_flags = "--lambda-ka";
  m.weight_help = "Weight of the ka term (default --lambda-distill, else 1)";
  m.default_weight = [](const std::string&) { return 1.0; };
  m.follows_lambda_distill = true;
  m.min_batch_size = 2;
  m.min_batch_reason =
      "kernel alignment compares the samples of a batch with each other (N x N Gram matrices); with one sample "
      "KA is always 1 and gives the student no signal";
  // CAT trains its students on 4 GPUs (batch 80, scripts/*/train_inception_student_*.sh) and
  // sums the 4 replicas' KAs; 1 keeps one KA over the whole batch.
  m.options = {{"ka_chunks", "--ka-chunks", OptionType::Integer, int64_t{1}, 1, kMaxKaChunks, {},
                "ka: split each batch into this many chunks as DataParallel over N GPUs does and sum their KAs "
                "(CAT's 4-GPU recipes: 4)",
                true}};
  m.make_term = [](const DistillContext&, const OptionValues& o) -> std::shared_ptr<DistillTerm> {
    return KaTerm(o.integer("ka_chunks")).ptr();
  };
  return m;
}

}  // namespace ganlite::compress
