"""TFLite variants of a real network: file size, Set5 PSNR drop and CPU speed against Keras.

Usage: python benchmarks/tflite_variants.py [--data_dir ../shared/datasets] [--scale 2]
           [--weights ../shared/reference_models/vdsr_291_x234.npz] [--threads 2] [--repeats 2]

The network is the public trained VDSR (the table in docs/deployment.md). Each
variant is scored with the evaluation protocol (cmsc_tf.eval.protocol: Y channel,
modcrop, MATLAB bicubic, shave) on Set5, and the network alone (no bicubic)
is timed on the five Set5 inputs, Keras and every variant in the same run,
best of ``--repeats``. int8 is calibrated on 200 patches of T91 (training
images, not Set5). Prints a Markdown table for docs/deployment.md.
"""

import argparse
import os
import pathlib
import tempfile
import time

import numpy as np
import tensorflow as tf

import cmsc_tf
from cmsc_tf.deploy import tflite
from cmsc_tf.eval import protocol
from cmsc_tf.io.image_sets import list_images
from cmsc_tf.io.images import read_image
from cmsc_tf.numerics import degradation

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(os.environ.get("CMSC_SHARED_DIR", REPO.parent / "shared"))


def set_inputs(data_dir, scale):
    """[(hr luminance y, network input x)] of Set5, both float64 [H, W]."""
    pairs = []
    for path in list_images(data_dir / "benchmark" / "Set5"):
        y = protocol.hr_luminance(read_image(path), scale)
        pairs.append((y, degradation.degrade(y, scale)))
    return pairs


def mean_psnr(predict, pairs, scale):
    """Mean Set5 PSNR through the evaluation protocol (the same numbers as training.evaluate)."""
    return float(np.mean([protocol.score_image(y, scale, predict, ("psnr",))[0]["psnr"] for y, _ in pairs]))


def best_seconds(predict, pairs, repeats):
    predict(pairs[0][1])  # warm-up (tracing, tensor allocation)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _, x in pairs:
            predict(x)
        best = min(best, time.perf_counter() - start)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=os.environ.get("CMSC_DATA_DIR", str(SHARED / "datasets")))
    parser.add_argument("--weights", default=str(SHARED / "reference_models" / "vdsr_291_x234.npz"))
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--calibration_patches", type=int, default=200)
    args = parser.parse_args()
    data_dir = pathlib.Path(args.data_dir)

    model = cmsc_tf.load_vdsr_weights(cmsc_tf.build_model("vdsr"), args.weights)
    pairs = set_inputs(data_dir, args.scale)
    forward = tf.function(
        lambda x: model(x, training=False), input_signature=[tf.TensorSpec([1, None, None, 1], tf.float32)]
    )
    keras_predict = lambda x: forward(tf.constant(x[None, ..., None], tf.float32))[0, ..., 0].numpy()  # noqa: E731
    keras_psnr = mean_psnr(keras_predict, pairs, args.scale)
    keras_seconds = best_seconds(keras_predict, pairs, args.repeats)
    keras_bytes = sum(w.numpy().nbytes for w in model.weights)

    training = [read_image(p) for p in list_images(data_dir / "train" / "T91")]
    patches = tflite.representative_patches(training, args.scale, count=args.calibration_patches)

    rows = [("Keras float32 (weights)", keras_bytes, keras_psnr, 0.0, keras_seconds, 1.0)]
    with tempfile.TemporaryDirectory() as scratch:
        for variant in tflite.VARIANTS:
            path = tflite.save(model, pathlib.Path(scratch) / f"{variant}.tflite", variant, patches)
            network = tflite.TFLiteNetwork(path, num_threads=args.threads)
            predict = lambda x: network(x[..., None].astype(np.float32))[..., 0]  # noqa: E731
            score = mean_psnr(predict, pairs, args.scale)
            seconds = best_seconds(predict, pairs, args.repeats)
            rows.append((f"TFLite {variant}", path.stat().st_size, score, keras_psnr - score, seconds, keras_seconds / seconds))

    print(f"VDSR, Set5 x{args.scale} ({len(pairs)} images), {args.threads} threads, best of {args.repeats}")
    print("| model | file size | Set5 PSNR (dB) | drop vs Keras (dB) | network time, Set5 (s) | speed vs Keras |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, size, score, drop, seconds, speed in rows:
        print(f"| {name} | {size / 2**20:.2f} MiB | {score:.4f} | {drop:.4f} | {seconds:.2f} | {speed:.2f}x |")


if __name__ == "__main__":
    main()
