#include "ganlite/compress/distill_loss.h"

#include "ganlite/util/error.h"

namespace ganlite::compress {

void check_taps(const DistillInputs& in, const std::string& method) {
  if (!in.student || !in.teacher) throw Error(method + " distillation needs student and teacher outputs");
  if (in.student->taps.size() != in.teacher->taps.size()) {
    throw Error(method + " distillation: the student has " + std::to_string(in.student->taps.size()) +
                " taps, the teacher " + std::to_string(in.teacher->taps.size()));
  }
}

}  // namespace ganlite::compress
