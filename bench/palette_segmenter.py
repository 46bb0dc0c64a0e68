"""A toy TorchScript segmenter for `make-dataset --kind labels2scenes` data, for `ganlite eval
--segmenter` / `ganlite miou` where no trained segmenter exists (the papers' DRN-D-105 is for
cityscapes): each pixel's class is the nearest of the dataset's class colours (dataset.json).
It scores the ground-truth test images at about 61 mIoU, so it tells a scene painted with the
right classes from one that is not; it is no substitute for a trained segmenter.
Usage: python3 bench/palette_segmenter.py DATA_DIR OUT.pt"""
import json
import sys

import torch


class PaletteSegmenter(torch.nn.Module):
    def __init__(self, colors):
        super().__init__()
        palette = torch.tensor(colors, dtype=torch.float32).view(1, len(colors), 3, 1, 1) / 255.0
        self.register_buffer('palette', palette)

    def forward(self, x):  # [N, 3, H, W] RGB in [0, 1] -> [N, classes, H, W] scores
        return -((x.unsqueeze(1) - self.palette) ** 2).sum(2)


def main():
    data, out = sys.argv[1], sys.argv[2]
    classes = sorted(json.load(open(f'{data}/dataset.json'))['classes'], key=lambda c: c['id'])
    torch.jit.script(PaletteSegmenter([c['color'] for c in classes])).save(out)


if __name__ == '__main__':
    main()
