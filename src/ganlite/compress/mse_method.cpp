#include "ganlite/compress/mse_method.h"

#include <torch/torch.h>

#include "ganlite/nn/init.h"
#include "ganlite/train/cyclegan_task.h"
#include "ganlite/util/error.h"

namespace ganlite::compress {

MseTermImpl::MseTermImpl(const DistillContext& context) {
  const auto& s = context.student_tap_channels;
  const auto& t = context.teacher_tap_channels;
  if (s.size() != t.size()) {
    throw Error("mse distillation: the student has " + std::to_string(s.size()) + " taps, the teacher " +
                std::to_string(t.size()));
  }
  for (size_t i = 0; i < s.size(); ++i) {
    auto adaptor = register_module(std::to_string(i), torch::nn::Conv2d(torch::nn::Conv2dOptions(s[i], t[i], 1)));
    // GAN Compression (distillers/base_resnet_distiller.py, BaseResnetDistiller.__init__) passes
    // each adaptor through networks.init_net: weights N(0, 0.02), biases 0, drawn from the run's
    // seeded generator after the conv's own default init, adaptor by adaptor as here.
    nn::init_weights(*adaptor, "normal", 0.02);
    adaptors.push_back(adaptor);
  }
  to(context.device);
}

torch::Tensor MseTermImpl::loss(const DistillInputs& in) {
  check_taps(in, kMseMethod);
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

DistillMethod mse_distill_method() {
  DistillMethod m;
  m.name = kMseMethod;
  m.description = "GAN Compression's feature MSE through learned 1x1 adaptors";
  m.weight_flags = "--lambda-mse";
  m.weight_help = "Weight of the mse term (default --lambda-distill, else 1; cyclegan 0.01)";
  // GAN Compression's CycleGAN recipe: lambda_distill 0.01 and lambda_recon 10.
  m.default_weight = [](const std::string& task) { return task == train::kCycleGanTask ? 0.01 : 1.0; };
  m.follows_lambda_distill = true;
  m.cyclegan_recon_weight_alone = 10;
  // ResnetDistiller.optimize_parameters: backward_D, backward_G against the same D, then both steps.
  m.update_order = UpdateOrder::kSimultaneous;
  m.make_term = [](const DistillContext& context, const OptionValues&) -> std::shared_ptr<DistillTerm> {
    return MseTerm(context).ptr();
  };
  return m;
}

}  // namespace ganlite::compress
