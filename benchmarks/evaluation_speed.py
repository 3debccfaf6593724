"""Speed of the evaluation code, side by side with the straightforward alternatives.

Usage: python benchmarks/evaluation_speed.py [--data_dir ../shared/datasets/benchmark] [--images 20]

On the first N images of BSD100 at x2, prints the mean (over images) of the
best of 3 seconds per image, the two sides alternating, of
our SSIM vs scikit-image's ``structural_similarity`` (same settings), our IFC
(only the 8 used subbands) vs IFC through the full pyrtools pyramid, and our
NumPy imresize vs scikit-image's ``resize`` (order 3, not MATLAB-exact; a
speed reference only), each with the ratio.
"""

import argparse
import pathlib
import time
from unittest import mock

import numpy as np
import pyrtools
from skimage.metrics import structural_similarity
from skimage.transform import resize

from cmsc_tf.eval import metrics, protocol
from cmsc_tf.io import image_sets
from cmsc_tf.io.images import read_image
from cmsc_tf.numerics import degradation


def _seconds(fn, args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def mean_seconds_side_by_side(ours, alternative, inputs, repeats=3):
    """Mean over inputs of the best of `repeats` runs, the two alternating per input.

    Alternating keeps a machine shared with other jobs from favouring one side.
    """
    best_ours, best_alt = [], []
    for args in inputs:
        times = [(_seconds(ours, args), _seconds(alternative, args)) for _ in range(repeats)]
        best_ours.append(min(t[0] for t in times))
        best_alt.append(min(t[1] for t in times))
    return float(np.mean(best_ours)), float(np.mean(best_alt))


def skimage_ssim(a, b):
    return structural_similarity(a, b, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)


def full_pyramid_bands(image):
    pyramid = pyrtools.pyramids.SteerablePyramidSpace(image, height=4, order=5, edge_type="reflect1")
    return {i: pyramid.pyr_coeffs[metrics._subband_geometry(i)[:2]] for i in metrics._IFC_SUBBANDS}


def full_pyramid_ifc(a, b):
    with mock.patch.object(metrics, "_oriented_bands", full_pyramid_bands):
        return metrics.ifc(a, b)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=str(pathlib.Path(__file__).resolve().parents[2] / "shared/datasets/benchmark"))
    parser.add_argument("--images", type=int, default=20)
    args = parser.parse_args()
    paths = image_sets.list_images(pathlib.Path(args.data_dir) / "BSD100")[: args.images]
    scale = 2
    ys = [protocol.hr_luminance(read_image(p), scale) for p in paths]
    pairs = []
    for y in ys:
        x = degradation.degrade(y, scale)
        pairs.append((protocol.shave(y * 255, scale), protocol.shave(x * 255, scale)))
    rows = [
        ("SSIM", metrics.ssim, skimage_ssim, pairs),
        ("IFC", metrics.ifc, full_pyramid_ifc, pairs),
        (
            "resize down+up",
            lambda y: degradation.degrade(y, scale),
            lambda y: resize(resize(y, (y.shape[0] // 2, y.shape[1] // 2), order=3), y.shape, order=3),
            [(y,) for y in ys],
        ),
    ]
    print(f"BSD100 x{scale}, {len(paths)} images, mean seconds per image")
    print(f"{'step':<16}{'ours':>10}{'alternative':>14}{'ratio':>8}")
    for name, ours, alternative, inputs in rows:
        t_ours, t_alt = mean_seconds_side_by_side(ours, alternative, inputs)
        print(f"{name:<16}{t_ours:>10.4f}{t_alt:>14.4f}{t_alt / t_ours:>8.2f}")


if __name__ == "__main__":
    main()
