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
  for (size_t i = 0; i < s.size(); ++i) total = total - kernel_alignment(s[i], t[i]);
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
  m.make_term = [](const DistillContext&, const OptionValues&) -> std::shared_ptr<DistillTerm> {
    return KaTerm().ptr();
  };
  return m;
}

}  // namespace ganlite::compress
