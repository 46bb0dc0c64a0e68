// Discriminator compression (methods.md 3.5: compressing D with G helps the student): a trained
// PatchGAN / pixel D narrowed to a smaller ndf, keeping in each layer the output channels with
// the largest scores and slicing the next layer's inputs to match. The result is an ordinary
// discriminator of width `new_ndf` (same keys, loadable and exportable like any D).
//
// Scores per output channel of every conv but the last (model.0, model.2, model.5, model.8 for
// the default 3-layer PatchGAN): |gamma| of the norm that follows it when that norm has a scale
// (batch, instance_affine: model.3, model.6, model.9); otherwise (the first conv, which has no
// norm, and convs followed by the default non-affine InstanceNorm) the L1 norm of its filter.
// Every layer keeps new_ndf / ndf of its channels; the last conv keeps its single output.
#pragma once
#include <torch/types.h>

#include <vector>

#include "ganlite/nn/discriminator.h"

namespace ganlite::compress {

// `trained` was built from `config` (ndf = config.ndf). Throws UsageError unless
// 1 <= new_ndf <= config.ndf. The result is on the device of `trained`.
nn::Discriminator prune_discriminator(nn::DiscriminatorImpl& trained, const nn::DiscriminatorConfig& config,
                                      int new_ndf);

// The scores described above, one tensor per pruned conv, in layer order.
std::vector<torch::Tensor> discriminator_channel_scores(nn::DiscriminatorImpl& trained);

}  // namespace ganlite::compress
