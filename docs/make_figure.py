"""Draws docs/figure_x3.png: bicubic | CMSC | HR crops of a benchmark image at x3.

Usage (from the repository root):

    python docs/make_figure.py --image=../shared/datasets/benchmark/Set5/butterfly.png \
        --model=cmsc_compact --out=docs/figure_x3.png

The HR image is modcropped and degraded by the protocol
(`cmsc_tf.numerics.degradation`: MATLAB bicubic x1/3 of each colour channel,
rounded to the uint8 LR image). Bicubic is the protocol's `imresize(lr, 3)`;
CMSC is `cmsc_tf.Upscaler` on the LR image (the network on luminance,
chroma bicubic). Prints the luminance PSNR of each crop (no border shaved:
the crop is inside the image).
"""

import argparse
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from cmsc_tf.eval import metrics  # noqa: E402
from cmsc_tf.io import images  # noqa: E402
from cmsc_tf.numerics import color, degradation  # noqa: E402


def to_uint8(x):
    return np.clip(np.round(np.asarray(x) * 255.0), 0, 255).astype(np.uint8)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default="../shared/datasets/benchmark/Set5/butterfly.png")
    parser.add_argument("--model", default="cmsc_compact",
                        help="a SavedModel folder, or a preset name (its float32 SavedModel)")
    parser.add_argument("--scale", type=int, default=3)
    parser.add_argument("--crop", default="60,60,120", help="top,left,size of the HR crop")
    parser.add_argument("--out", default="docs/figure_x3.png")
    args = parser.parse_args()

    import cmsc_tf
    from cmsc_tf import _quiet
    from cmsc_tf.deploy import loader
    from cmsc_tf.models import presets

    model = presets.resolve(args.model)  # a preset's SavedModel: the float32 network

    if loader.needs_tensorflow(model, loader.default_precision(model)):
        _quiet.load("tensorflow")  # its C++ start-up lines hidden, as the commands do

    scale = args.scale
    hr = degradation.modcrop(images.read_image(args.image), scale)[..., :3]
    hr_unit = hr.astype(np.float64) / 255.0
    lr = to_uint8(np.stack([degradation.downscale(hr_unit[..., c], scale) for c in range(3)], -1))
    lr_unit = lr.astype(np.float64) / 255.0
    bicubic = to_uint8(np.stack([degradation.upscale(lr_unit[..., c], scale) for c in range(3)], -1))
    cmsc = cmsc_tf.Upscaler(model).upscale(lr, scale)
    top, left, size = (int(v) for v in args.crop.split(","))
    window = np.s_[top:top + size, left:left + size]
    panels = [(f"bicubic x{scale}", bicubic), (f"CMSC (compact) x{scale}", cmsc),
              (f"HR ({pathlib.Path(args.image).stem})", hr)]
    reference = color.luminance(hr[window])
    results = []
    for label, image in panels:
        crop = image[window]
        value = metrics.psnr(reference, color.luminance(crop))
        results.append((label, crop, value))
        print(f"{label}: crop PSNR (Y) {value:.2f} dB")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(7.5, 2.9))
    for ax, (label, crop, value) in zip(axes, results):
        ax.imshow(crop, interpolation="nearest")
        ax.set_title(label if np.isinf(value) else f"{label}\n{value:.2f} dB", fontsize=10)
        ax.axis("off")
    figure.tight_layout()
    figure.savefig(args.out, dpi=100)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
