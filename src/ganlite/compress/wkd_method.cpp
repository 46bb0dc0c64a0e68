#include "ganlite/compress/wkd_method.h"

#include "ganlite/compress/wavelet.h"
#include "ganlite/util/error.h"

namespace ganlite::compress {

torch::Tensor WkdTermImpl::loss(const DistillInputs& in) {
  if (!in.student || !in.teacher) throw Error("wkd distillation needs student and teacher outputs");
  return wavelet_detail_loss(in.student->image, in.teacher->image, levels_, distance_);
}

DistillMethod wkd_distill_method() {
  DistillMethod m;
  m.name = kWkdMethod;
  m.description = "wavelet detail bands of the teacher's output";
  m.weight_flags = "--wkd-weight,--lambda-wkd";
  m.weight_help = "Weight of the wkd term (default 0.4)";
  m.default_weight = [](const std::string&) { return 0.4; };  // the WKD release's alpha
  m.options = {
      {"wkd_levels", "--wkd-levels", OptionType::Integer, int64_t{4}, 1, kMaxWkdLevels, {}, "Haar levels for wkd"},
      {"wkd_distance", "--wkd-distance", OptionType::Text, std::string("l1"), 0, 0, {"l1", "mse"},
       "wkd distance: l1 (paper) | mse (released code)"},
  };
  m.make_term = [](const DistillContext&, const OptionValues& o) -> std::shared_ptr<DistillTerm> {
    return WkdTerm(static_cast<int>(o.integer("wkd_levels")), o.text("wkd_distance")).ptr();
  };
  return m;
}

}  // namespace ganlite::compress
