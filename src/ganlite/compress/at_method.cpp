#include "ganlite/compress/at_method.h"

#include <torch/torch.h>

#include "ganlite/util/error.h"

namespace ganlite::compress {

torch::Tensor attention_map(const torch::Tensor& features) {
  const auto a = features.pow(2).mean(1).reshape({features.size(0), -1});
  return a / a.norm(2, 1, true).clamp_min(1e-12);
}

torch::Tensor AtTermImpl::loss(const DistillInputs& in) {
  check_taps(in, kAtMethod);
  const auto& s = in.student->taps;
  const auto& t = in.teacher->taps;
  torch::Tensor total = torch::zeros({}, in.real_a.options());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i].sizes().slice(2) != t[i].sizes().slice(2)) {
      throw Error("at distillation: tap " + std::to_string(i) + " is " + std::to_string(s[i].size(2)) + "x" +
                  std::to_string(s[i].size(3)) + " in the student but " + std::to_string(t[i].size(2)) + "x" +
                  std::to_string(t[i].size(3)) + " in the teacher");
    }
    total = total + (attention_map(s[i]) - attention_map(t[i])).pow(2).mean();
  }
  return total;
}

DistillMethod at_distill_method() {
  DistillMethod m;
  m.name = kAtMethod;
  m.description = "attention transfer (Zagoruyko & Komodakis 2017): normalised channel-mean |F|^2 maps of the taps";
  m.weight_flags = "--lambda-at";
  m.weight_help = "Weight of the at term (default 500: the public code's beta / 2, beta = 1e3)";
  m.default_weight = [](const std::string&) { return 500.0; };
  m.make_term = [](const DistillContext&, const OptionValues&) -> std::shared_ptr<DistillTerm> {
    return AtTerm().ptr();
  };
  return m;
}

}  // namespace ganlite::compress
