"""Inference paths on the CPU for the shipped CMSCs: time, GFLOP/s, speed against Keras float32, Set5 PSNR change.

Usage: python benchmarks/precision.py [--models cmsc_compact cmsc_full] [--size 256] [--repeats 3]
           [--psnr_scales 2 3 4] [--torch_python /work/torch-venv/bin/python] [--full_int8]
           [--data_dir ../shared/datasets]

Every path runs the same trained network (``savedmodels/<model>.keras`` and
its exports) on one ``size x size`` bicubic luminance, all paths of a model
timed alternately in the same run, best of ``--repeats`` (the machine may be
shared: compare the ratios). Paths:

* ``Keras float32``: ``Upscaler(<preset>, precision="float32")``, the float32
  SavedModel (what every ratio is against);
* ``Keras bfloat16``: ``precision="bfloat16"`` (Keras mixed precision);
* ``Keras float32 XLA``: the Keras model in a ``tf.function(jit_compile=True)``;
* ``LiteRT float32``: the network converted to TFLite without quantisation;
* ``LiteRT dynamic int8``: ``Upscaler(<preset>)``, the default: the shipped
  ``<preset>_dynamic_int8.tflite`` (int8 weights, activations quantised on
  the fly, XNNPACK), with every core; also with 1 thread, and with XNNPACK's
  transient indirection buffer (``CompiledModel`` with
  ``xnnpack_flags``: less memory);
* ``LiteRT full int8`` (``--full_int8``; slow to convert): weights and
  activations int8, per-channel, calibrated on 200 T91 patches;
* ``PyTorch float32`` / ``bfloat16`` autocast: the same network written in
  PyTorch (``benchmarks/cmsc_torch.py``, batch norm folded), run by
  ``--torch_python`` (a Python with torch; default: this one if it has
  torch, else ``$CMSC_TORCH_PYTHON``); the rows are skipped, saying so, where
  there is none. The faster memory layout (contiguous or channels_last) is shown.

GFLOP/s counts the convolutions (``benchmarks/inference_flops.py``). ``max
diff``: largest difference from the Keras float32 output on the timed input.
``Set5 dB``: Set5 PSNR change against Keras float32 by the evaluation
protocol at ``--psnr_scales`` (only for the paths whose numerics differ;
XLA, LiteRT float32 and the other dynamic-int8 runners compute what their
row above computes, see ``max diff``; ``--score default``: Keras float32
and the default only). The ``Upscaler`` column: the whole
``Upscaler.upscale`` of a ``size / 2`` RGB image at x2 (``size`` output).
After each table, the bound: the model's convolutions alone (every
elementwise operation between them dropped: leaky ReLU, the merge-and-run
additions, the averages), timed as LiteRT dynamic int8 and, with torch, as
PyTorch bfloat16 in the same rounds. Their ratio is what int8 gains over
bfloat16 convolution for convolution on this CPU; the PyTorch bfloat16 row
over the int8 bound is the most that removing every operation between the
int8 convolutions could reach; the default's time over the int8 bound is
its elementwise share. Ends
with one bare 3x3 64 -> 64 convolution in float32 and bfloat16: what the
hardware gives without Keras.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np
import skimage.data
import tensorflow as tf

import cmsc_tf  # noqa: F401  (registers the layers that load_model reads)
from cmsc_tf.deploy import tflite
from cmsc_tf.deploy import upscaler as upscaler_lib
from cmsc_tf.deploy.upscaler import Upscaler
from cmsc_tf.eval import protocol
from cmsc_tf.io.image_sets import list_images
from cmsc_tf.io.images import read_image
from cmsc_tf.models.model import final_output
from convolutions_alone import convolutions_alone
from inference_flops import conv_flops

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(os.environ.get("CMSC_SHARED_DIR", REPO.parent / "shared"))
# XNNPACK delegate flags (tensorflow/lite/delegates/xnnpack/xnnpack_delegate.h):
# QS8 | QU8 | DYNAMIC_FULLY_CONNECTED (what the default delegate runs with) | TRANSIENT_INDIRECTION_BUFFER.
XNNPACK_TRANSIENT_FLAGS = 0x1 | 0x2 | 0x8 | 0x20


class CompiledNetwork:
    """A ``.tflite`` network run with LiteRT's ``CompiledModel`` and explicit XNNPACK flags (one input size)."""

    def __init__(self, path, xnnpack_flags, num_threads):
        from ai_edge_litert.compiled_model import CompiledModel
        from ai_edge_litert.cpu_options import CpuOptions
        from ai_edge_litert.options import Options

        options = Options(cpu_options=CpuOptions(num_threads=num_threads, xnnpack_flags=xnnpack_flags))
        self._model = CompiledModel.from_buffer(pathlib.Path(path).read_bytes(), options=options)
        self._shape = None

    def __call__(self, y):
        shape = (1, y.shape[0], y.shape[1], 1)
        if shape != self._shape:
            self._model.resize_input_tensor(0, list(shape), 0, True)
            self._inputs, self._outputs = self._model.create_input_buffers(0), self._model.create_output_buffers(0)
            self._shape = shape
        self._inputs[0].write(np.ascontiguousarray(y, np.float32).reshape(shape))
        self._model.run_by_index(0, self._inputs, self._outputs)
        return self._outputs[0].read(y.shape[0] * y.shape[1], np.float32).reshape(y.shape[0], y.shape[1], 1)


def torch_python(requested):
    """A Python interpreter that imports torch, or None."""
    for candidate in (requested, sys.executable, os.environ.get("CMSC_TORCH_PYTHON")):
        if candidate and subprocess.run([candidate, "-c", "import torch"], capture_output=True).returncode == 0:
            return candidate
    return None


def run_torch(python, weights, repeats):
    result = subprocess.run([python, str(REPO / "benchmarks" / "cmsc_torch.py"), str(weights), "--repeats", str(repeats),
                             "--threads", str(tflite.available_cores())], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def set5_psnr(network, scales, images):
    """{scale: mean Set5 PSNR} of a ``[H, W, 1]`` network through the evaluation protocol (output clipped)."""
    def predict(x):
        return protocol.to_image(network(np.asarray(x, np.float32)[:, :, None])[None], np.shape(x))

    return {s: float(np.mean([protocol.score_image(protocol.hr_luminance(image, s), s, predict, ("psnr",))[0]["psnr"]
                              for image in images])) for s in scales}


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


def paths_of(name, args, scratch):
    """[(row name, network function, Upscaler or None, scored on Set5)] for preset ``name``."""
    import keras

    model = keras.saving.load_model(REPO / "savedmodels" / f"{name}.keras", compile=False, safe_mode=True)
    jit = tf.function(lambda y: final_output(model(y, training=False)), jit_compile=True,
                      input_signature=[tf.TensorSpec([1, None, None, 1], tf.float32)])
    float32_file = scratch / f"{name}_float32.tflite"
    float32_file.write_bytes(tflite.convert(model, "float32"))
    int8_file = REPO / "savedmodels" / f"{name}_dynamic_int8.tflite"
    upscalers = {p: Upscaler(name, precision=p) for p in ("float32", "bfloat16")}
    upscalers["default"] = Upscaler(name)
    assert upscalers["default"].precision == "dynamic_int8"
    cores = tflite.available_cores()
    paths = [
        ("Keras float32", upscalers["float32"].network_y, upscalers["float32"], True),
        ("Keras bfloat16", upscalers["bfloat16"].network_y, upscalers["bfloat16"], True),
        ("Keras float32 XLA", lambda y: jit(tf.constant(y[None]))[0].numpy(), None, False),
        (f"LiteRT float32, {cores} threads", tflite.TFLiteNetwork(float32_file), None, False),
        (f"LiteRT dynamic int8, {cores} threads (default)", upscalers["default"].network_y, upscalers["default"], True),
        ("LiteRT dynamic int8, 1 thread", tflite.TFLiteNetwork(int8_file, num_threads=1), None, False),
        (f"LiteRT dynamic int8, transient indirection, {cores} threads",
         CompiledNetwork(int8_file, XNNPACK_TRANSIENT_FLAGS, cores), None, False),
    ]
    if args.full_int8:
        training = [read_image(p) for p in list_images(pathlib.Path(args.data_dir) / "train" / "T91")]
        patches = tflite.representative_patches(training, 2, count=200)
        full_file = scratch / f"{name}_int8.tflite"
        full_file.write_bytes(tflite.convert(model, "int8", patches))
        paths.append((f"LiteRT full int8, {cores} threads", tflite.TFLiteNetwork(full_file), None, True))
    return model, paths


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["cmsc_compact", "cmsc_full"])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--psnr_scales", type=int, nargs="*", default=[2, 3, 4])
    parser.add_argument("--data_dir", default=os.environ.get("CMSC_DATA_DIR", str(SHARED / "datasets")))
    parser.add_argument("--torch_python", default=None, help="a Python with torch (default: this one, else $CMSC_TORCH_PYTHON)")
    parser.add_argument("--full_int8", action="store_true", help="also the full-integer int8 network (slow to convert)")
    parser.add_argument("--score", choices=("all", "default"), default="all",
                        help="Set5 PSNR of every path whose numerics differ, or of Keras float32 and the default only")
    args = parser.parse_args()
    set5 = [read_image(p) for p in list_images(pathlib.Path(args.data_dir) / "benchmark" / "Set5")]
    python = torch_python(args.torch_python)
    # The bicubic x2 luminance of a photograph crop: the network's real input
    # (speed does not depend on content; the output differences do).
    photo = skimage.data.astronaut()[: args.size // 2, : args.size // 2]
    window = (slice(0, args.size), slice(0, args.size))
    x = upscaler_lib.bicubic_window(photo, 2, window, upscaler_lib._unit_ycbcr)[..., :1]
    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        for name in args.models:
            model, paths = paths_of(name, args, scratch)
            flops = conv_flops(model, args.size, args.size)
            bound_model = convolutions_alone(model)
            assert conv_flops(bound_model, args.size, args.size) == flops
            bound_file = scratch / f"{name}_convolutions_alone.tflite"
            bound_file.write_bytes(tflite.convert(bound_model, "dynamic_int8"))
            bound = tflite.TFLiteNetwork(bound_file)
            bound(x)  # warm-up
            bound_seconds = float("inf")
            torch_rows = {}
            if python:
                weights = scratch / f"{name}.npz"
                from cmsc_torch import export_weights

                export_weights(model, weights, x[None])
            outputs = {row: np.asarray(network(x)) for row, network, _, _ in paths}  # also the warm-up
            for _, _, upscaler, _ in paths:
                if upscaler is not None:
                    upscaler.upscale(photo, 2)
            best = {row: float("inf") for row, _, _, _ in paths}
            best_upscale = {row: float("inf") for row, _, upscaler, _ in paths if upscaler is not None}
            for _ in range(args.repeats):
                for row, network, upscaler, _ in paths:
                    start = time.perf_counter()
                    network(x)
                    best[row] = min(best[row], time.perf_counter() - start)
                    if upscaler is not None:
                        start = time.perf_counter()
                        upscaler.upscale(photo, 2)
                        best_upscale[row] = min(best_upscale[row], time.perf_counter() - start)
                start = time.perf_counter()
                bound(x)
                bound_seconds = min(bound_seconds, time.perf_counter() - start)
                if python:  # between the rounds, under the same load
                    for key, seconds in run_torch(python, weights, 1)["seconds"].items():
                        torch_rows[key] = min(torch_rows.get(key, float("inf")), seconds)
            reference = outputs["Keras float32"]
            scored_rows = [row for row, _, _, scored in paths if scored
                           and (args.score == "all" or row == "Keras float32" or row.endswith("(default)"))]
            psnr = {row: set5_psnr(network, args.psnr_scales, set5) for row, network, _, _ in paths if row in scored_rows}
            base = best["Keras float32"]
            print(f"\n{name}: {args.size}x{args.size} luminance, {flops / 1e9:.1f} GFLOP, "
                  f"{tflite.available_cores()} cores, best of {args.repeats}")
            scales = "/".join(f"x{s}" for s in args.psnr_scales)
            print(f"| path | time (s) | GFLOP/s | speed vs Keras float32 | Upscaler x2 to {args.size} (s) "
                  f"| max diff | Set5 dB change {scales} |")
            print("| --- | --- | --- | --- | --- | --- | --- |")
            for row, _, _, scored in paths:
                change = "/".join(f"{psnr[row][s] - psnr['Keras float32'][s]:+.3f}" for s in args.psnr_scales) \
                    if row in psnr else ("(not scored: --score)" if scored else "(as above)")
                upscale = f"{best_upscale[row]:.2f}" if row in best_upscale else ""
                difference = float(np.abs(outputs[row] - reference).max())
                print(f"| {row} | {best[row]:.3f} | {flops / best[row] / 1e9:.0f} | {base / best[row]:.2f}x | "
                      f"{upscale} | {difference:.1e} | {change} |")
            if python:
                for precision in ("float32", "bfloat16"):
                    layout = min(("contiguous", "channels_last"), key=lambda k: torch_rows[f"{precision} {k}"])
                    seconds = torch_rows[f"{precision} {layout}"]
                    best[f"PyTorch {precision}"] = seconds
                    print(f"| PyTorch {precision}{' autocast' if precision == 'bfloat16' else ''} ({layout}) | "
                          f"{seconds:.3f} | {flops / seconds / 1e9:.0f} | {base / seconds:.2f}x | | | |")
            else:
                print("| PyTorch float32 / bfloat16 | skipped: no Python with torch (--torch_python) | | | | | |")
            print("Set5 PSNR (dB), Keras float32: " + " / ".join(
                f"x{s} {psnr['Keras float32'][s]:.4f}" for s in args.psnr_scales))
            default = next(row for row in best if row.endswith("(default)"))
            line = f"default (LiteRT dynamic int8) vs Keras float32: {base / best[default]:.2f}x"
            if python:
                line += (f"; vs PyTorch bfloat16: {best['PyTorch bfloat16'] / best[default]:.2f}x"
                         f"; vs PyTorch float32: {best['PyTorch float32'] / best[default]:.2f}x")
            print(line)
            line = (f"bound, the convolutions alone: LiteRT dynamic int8 {bound_seconds:.3f} s "
                    f"({flops / bound_seconds / 1e9:.0f} GFLOP/s); the default spends "
                    f"{100 * (1 - bound_seconds / best[default]):.0f} % of its time between them")
            if python:
                torch_bound = min(torch_rows[f"convolutions alone bfloat16 {k}"] for k in ("contiguous", "channels_last"))
                line += (f"; PyTorch bfloat16 {torch_bound:.3f} s ({flops / torch_bound / 1e9:.0f} GFLOP/s): "
                         f"int8 over bfloat16 at most {torch_bound / bound_seconds:.2f}x on these convolutions")
            print(line)
    f32, bf16 = conv_seconds(128, tf.float32, args.repeats), conv_seconds(128, tf.bfloat16, args.repeats)
    print(f"\none 3x3 64->64 conv 128x128: float32 {f32 * 1e3:.2f} ms, bfloat16 {bf16 * 1e3:.2f} ms, "
          f"speed-up {f32 / bf16:.2f}x (what the hardware gives, without Keras)")


if __name__ == "__main__":
    main()
