"""Whether a wider compact CMSC could be the default: the int8 time per image against today's.

Usage: python benchmarks/default_width.py [--features 32 40 48] [--size 256] [--repeats 5]

Issue 22 lets a larger default take at most twice today's default time per
image (the LiteRT dynamic-int8 network on a ``size x size`` bicubic
luminance). Speed does not depend on the weights, so each width is the
shipped compact CMSC's configuration (2 stages of 2 modules) with
another width and fresh weights, converted to dynamic int8 exactly as
``training.export`` converts the shipped one; the shipped
``cmsc_compact_dynamic_int8.tflite`` runs beside them. All networks are timed
alternately in one run, best of ``--repeats`` (the machine may be shared:
compare the ratios). Prints parameters, convolution GFLOP, milliseconds
and the ratio against the shipped default.
"""

import argparse
import os
import pathlib
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.inference_flops import conv_flops  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, nargs="+", default=[32, 40, 48])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import keras

    from cmsc_tf.deploy import tflite
    from cmsc_tf.models import presets

    shipped = keras.saving.load_model(presets.preset_path("cmsc_compact", "keras"), compile=False)
    networks = {"shipped default (32)": (shipped, tflite.TFLiteNetwork(
        presets.preset_path("cmsc_compact", "tflite_dynamic_int8")))}
    for features in args.features:
        model = shipped.__class__.from_config({**shipped.get_config(), "num_features": features})
        networks[f"{features} features"] = (model, tflite.TFLiteNetwork(tflite.convert(model, "dynamic_int8")))
    image = np.random.default_rng(0).random((args.size, args.size, 1), np.float32)
    best = {name: float("inf") for name in networks}
    for name, (_, network) in networks.items():
        network(image)  # tensors allocated, XNNPACK's packing done
    for _ in range(args.repeats):
        for name, (_, network) in networks.items():
            start = time.perf_counter()
            network(image)
            best[name] = min(best[name], time.perf_counter() - start)
    base = best["shipped default (32)"]
    print(f"LiteRT dynamic int8, {args.size}x{args.size} luminance, best of {args.repeats}")
    print("| network | parameters | GFLOP | ms | x the shipped default |")
    print("| --- | --- | --- | --- | --- |")
    for name, (model, _) in networks.items():
        print(f"| {name} | {model.count_params():,} | {conv_flops(model, args.size, args.size) / 1e9:.2f} | "
              f"{best[name] * 1e3:.1f} | {best[name] / base:.2f} |")


if __name__ == "__main__":
    main()
