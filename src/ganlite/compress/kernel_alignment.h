// Kernel alignment (KA), CAT's distillation similarity between student and teacher features.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace ganlite::compress {

// Uncentred linear kernel alignment of two feature batches with the same batch size N >= 2:
// X = student.view(N, -1), Y = teacher.view(N, -1), G_X = X X^T, G_Y = Y Y^T,
// KA = <G_X, G_Y>_F / (||G_X||_F ||G_Y||_F), in [0, 1]. Feature widths may differ (no
// projection is learned). Differentiable in both arguments; throws UsageError when N < 2,
// since a 1x1 Gram matrix makes KA identically 1.
torch::Tensor kernel_alignment(const torch::Tensor& student, const torch::Tensor& teacher);

// The sizes a batch of n splits into over `parts` replicas, as torch.nn.DataParallel scatters it
// (torch.chunk: chunks of ceil(n / parts), the last smaller, fewer than `parts` when n is small).
// parts >= 1, n >= 1; UsageError otherwise.
std::vector<int64_t> data_parallel_chunk_sizes(int64_t n, int64_t parts);

// CAT's KA under DataParallel on `parts` GPUs (snap-research/CAT,
// distillers/inception_distiller.py, InceptionDistiller.calc_distill_loss): each replica's KA over
// its chunk of the batch, summed. A one-sample chunk adds its exact KA, 1, without gradient.
// parts = 1 is kernel_alignment(student, teacher) itself, bit for bit.
torch::Tensor chunked_kernel_alignment(const torch::Tensor& student, const torch::Tensor& teacher, int64_t parts);

}  // namespace ganlite::compress
