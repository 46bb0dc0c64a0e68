// Kernel alignment (KA), CAT's distillation similarity between student and teacher features.
#pragma once
#include <torch/types.h>

namespace ganlite::compress {

// Uncentred linear kernel alignment of two feature batches with the same batch size N >= 2:
// X = student.view(N, -1), Y = teacher.view(N, -1), G_X = X X^T, G_Y = Y Y^T,
// KA = <G_X, G_Y>_F / (||G_X||_F ||G_Y||_F), in [0, 1]. Feature widths may differ (no
// projection is learned). Differentiable in both arguments; throws UsageError when N < 2,
// since a 1x1 Gram matrix makes KA identically 1.
torch::Tensor kernel_alignment(const torch::Tensor& student, const torch::Tensor& teacher);

}  // namespace ganlite::compress
