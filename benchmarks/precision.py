"""Reduced-precision inference: speed of the full CMSC and Set5 PSNR change of a trained network.

Usage: python benchmarks/precision.py [--reduced bfloat16] [--size 128] [--repeats 3]
           [--data_dir ../shared/datasets] [--trained savedmodels/cmsc_compact.keras]

Speed: the full paper CMSC (``build_model("cmsc")``, random weights: speed
does not depend on them) through ``Upscaler(model, precision=...).network_y``
on one ``size x size`` luminance, float32 and the reduced precision timed
alternately in the same run, best of ``--repeats``.
PSNR: a trained network on Set5 x2 with the evaluation protocol, float32
against the reduced precision: ``--trained`` (a ``.keras`` file; default the
shipped compact CMSC ``savedmodels/cmsc_compact.keras``, else the public VDSR
weights of ``--weights``).
``--reduced bfloat16`` is for CPUs (AVX512_BF16 / AMX), ``float16`` for GPUs.
"""

import argparse
import os
import pathlib
import time

import numpy as np
import tensorflow as tf

import cmsc_tf
from cmsc_tf.deploy.upscaler import Upscaler
from cmsc_tf.eval import protocol
from cmsc_tf.io.image_sets import list_images
from cmsc_tf.io.images import read_image

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(os.environ.get("CMSC_SHARED_DIR", REPO.parent / "shared"))


def conv_seconds(size, dtype, repeats):
    """Best time of one bare tf.nn.conv2d, 3x3, 64 -> 64 channels, in ``dtype``."""
    x = tf.cast(tf.random.normal((1, size, size, 64)), dtype)
    k = tf.cast(tf.random.normal((3, 3, 64, 64)), dtype)
    conv = tf.function(lambda: tf.reduce_sum(tf.cast(tf.nn.conv2d(x, k, 1, "SAME"), tf.float32)))
    conv()
    best = float("inf")
    for _ in range(10 * repeats):
        start = time.perf_counter()
        conv().numpy()
        best = min(best, time.perf_counter() - start)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reduced", default="bfloat16", choices=("bfloat16", "float16"))
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--data_dir", default=os.environ.get("CMSC_DATA_DIR", str(SHARED / "datasets")))
    parser.add_argument("--weights", default=str(SHARED / "reference_models" / "vdsr_291_x234.npz"))
    parser.add_argument("--trained", default=str(REPO / "savedmodels" / "cmsc_compact.keras"))
    args = parser.parse_args()
    precisions = ("float32", args.reduced)

    cmsc = cmsc_tf.build_model("cmsc")
    networks = {p: Upscaler(cmsc, precision=p).network_y for p in precisions}
    x = np.random.default_rng(0).uniform(size=(args.size, args.size, 1)).astype(np.float32)
    outputs = {p: network(x) for p, network in networks.items()}  # also the warm-up
    best = {p: float("inf") for p in precisions}
    for _ in range(args.repeats):
        for p, network in networks.items():
            start = time.perf_counter()
            network(x)
            best[p] = min(best[p], time.perf_counter() - start)

    if os.path.isfile(args.trained):
        import keras

        trained = keras.saving.load_model(args.trained, safe_mode=True)
        trained_name = os.path.relpath(args.trained)
    else:
        trained = cmsc_tf.load_vdsr_weights(cmsc_tf.build_model("vdsr"), args.weights)
        trained_name = f"VDSR ({args.weights})"
    paths = list_images(pathlib.Path(args.data_dir) / "benchmark" / "Set5")
    psnr = {}
    for p in precisions:
        network = Upscaler(trained, precision=p).network_y
        predict = lambda x: network(x[..., None].astype(np.float32))[..., 0]  # noqa: E731
        psnr[p] = np.mean(
            [
                protocol.score_image(protocol.hr_luminance(read_image(path), args.scale), args.scale, predict, ("psnr",))[0]["psnr"]
                for path in paths
            ]
        )

    reduced = args.reduced
    print(f"full CMSC {args.size}x{args.size}, best of {args.repeats}:")
    for p in precisions:
        print(f"  {p:9s} {best[p]:.3f} s")
    print(f"  speed-up {reduced} / float32 = {best['float32'] / best[reduced]:.2f}x")
    # Random He-initialised weights give outputs far outside [0, 1]; relative is what means something.
    relative = np.abs(outputs["float32"] - outputs[reduced]).max() / np.abs(outputs["float32"]).max()
    print(f"  max |output difference| / max |float32 output| = {relative:.4f}")
    f32, red = conv_seconds(args.size, tf.float32, args.repeats), conv_seconds(args.size, tf.as_dtype(reduced), args.repeats)
    print(f"one 3x3 64->64 conv {args.size}x{args.size}: float32 {f32 * 1e3:.2f} ms, {reduced} {red * 1e3:.2f} ms, "
          f"speed-up {f32 / red:.2f}x (what the hardware gives, without Keras)")
    print(f"{trained_name} Set5 x{args.scale} PSNR: float32 {psnr['float32']:.4f} dB, {reduced} {psnr[reduced]:.4f} dB, "
          f"change {psnr[reduced] - psnr['float32']:+.4f} dB")


if __name__ == "__main__":
    main()
