#include "ganlite/compress/distill_loss.h"

#include <torch/torch.h>

#include "ganlite/compress/dcd_term.h"
#include "ganlite/compress/kernel_alignment.h"
#include "ganlite/compress/wavelet.h"
#include "ganlite/util/error.h"

namespace ganlite::compress {

namespace {

void check_taps(const DistillInputs& in, const char* method) {
  if (!in.student || !in.teacher) throw Error(std::string(method) + " distillation needs student and teacher outputs");
  if (in.student->taps.size() != in.teacher->taps.size()) {
    throw Error(std::string(method) + " distillation: the student has " + std::to_string(in.student->taps.size()) +
                " taps, the teacher " + std::to_string(in.teacher->taps.size()));
  }
}

}  // namespace

torch::Tensor KaTermImpl::loss(const DistillInputs& in) {
  check_taps(in, "ka");
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

MseTermImpl::MseTermImpl(const DistillContext& context) {
  const auto& s = context.student_tap_channels;
  const auto& t = context.teacher_tap_channels;
  if (s.size() != t.size()) {
    throw Error("mse distillation: the student has " + std::to_string(s.size()) + " taps, the teacher " +
                std::to_string(t.size()));
  }
  for (size_t i = 0; i < s.size(); ++i) {
    adaptors.push_back(register_module(std::to_string(i), torch::nn::Conv2d(torch::nn::Conv2dOptions(s[i], t[i], 1))));
  }
  to(context.device);
}

torch::Tensor MseTermImpl::loss(const DistillInputs& in) {
  check_taps(in, "mse");
  const auto& s = in.student->taps;
  const auto& t = in.teacher->taps;
  if (s.size() != adaptors.size()) {
    throw Error("mse distillation: " + std::to_string(adaptors.size()) + " adaptors for " + std::to_string(s.size()) +
                " taps");
  }
  torch::Tensor total = torch::zeros({}, in.real_a.options());
  for (size_t i = 0; i < s.size(); ++i) total = total + torch::mse_loss(adaptors[i]->forward(s[i]), t[i]);
  return total;
}

torch::Tensor WkdTermImpl::loss(const DistillInputs& in) {
  if (!in.student || !in.teacher) throw Error("wkd distillation needs student and teacher outputs");
  return wavelet_detail_loss(in.student->image, in.teacher->image, levels_, distance_);
}

std::shared_ptr<DistillTerm> make_distill_term(const std::string& method, const DistillContext& context) {
  if (method == "ka") return KaTerm().ptr();
  if (method == "mse") return MseTerm(context).ptr();
  if (method == "wkd") {
    const int levels = context.config ? context.config->wkd_levels : 4;
    const std::string distance = context.config ? context.config->wkd_distance : "l1";
    return WkdTerm(levels, distance).ptr();
  }
  if (method == "dcd") return DcdTerm(context).ptr();
  throw_bad_choice("distillation method", method, valid_distill_methods());
}

}  // namespace ganlite::compress
