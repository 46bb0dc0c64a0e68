"""CAT's KA distillation step (snap-research/CAT, distillers/inception_distiller.py,
InceptionDistiller.optimize_parameters and calc_distill_loss with --distill_G_loss_type ka;
utils/common.py KA), K steps in float64 from the harness's weights and batches.

CAT runs the student under DataParallel: each GPU replica's taps give one -KA and the replicas'
losses are summed. Here the batch is split as DataParallel scatters it (torch.chunk into
ka_chunks parts) and -KA is summed over the parts; the GAN and reconstruction losses are over
the whole batch, as CAT computes them on the gathered outputs. CAT logs this term as G_distill;
ganlite calls it G_ka."""
import torch

import parity_common as pc


def KA(X, Y):
    # Uncentred linear kernel alignment of the flattened samples, as CAT's utils/common.py.
    x = X.reshape(X.size(0), -1)
    y = Y.reshape(Y.size(0), -1)
    gx = x @ x.T
    gy = y @ y.T
    return (gx * gy).sum() / ((gx ** 2).sum() * (gy ** 2).sum()) ** 0.5


def distill_loss(student_taps, teacher_taps, parts):
    losses = []
    for s, t in zip(student_taps, teacher_taps):
        losses.append(sum(-KA(sc, tc) for sc, tc in zip(torch.chunk(s, parts), torch.chunk(t, parts))))
    return sum(losses)


def main():
    pc.run_cat_distillation('G_ka', lambda d, s: distill_loss(d.s_taps.list(), d.t_taps.list(), s['ka_chunks']))


if __name__ == '__main__':
    main()
