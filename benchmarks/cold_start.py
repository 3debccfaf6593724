"""Cold start of ``cmsc-upscale``: whole processes, beside a bare LiteRT script running the same network.

Usage: python benchmarks/cold_start.py [--sizes 128 512] [--scale 2] [--repeats 3] [--no_float32]

For each size, a ``size x size`` photograph (``upscale_memory.photograph``:
the centre of skimage's retina) is written as a PNG and upscaled, each in
its own fresh process, by:

* ``cmsc-upscale`` with its defaults (the installed console script next to
  this Python; the ``cmsc_compact`` preset's dynamic-int8 LiteRT network,
  tiles of ``DEFAULT_TILE`` with the network's receptive radius as halo);
* a bare script (``BARE`` below) that a user could write with NumPy, Pillow
  and ``ai_edge_litert`` alone: the same ``.tflite`` file, the same thread
  count, the same tiles and halo, Pillow's bicubic and YCbCr (not MATLAB's:
  it does the same work, not the same pixels), Pillow's PNG writer;
* with ``--precision float32`` too (unless ``--no_float32``): the SavedModel
  through TensorFlow, for what importing TensorFlow and Keras costs.

Then ``cmsc-upscale --model cmsc_tiny`` (an unknown name, refused listing the
presets). The three kinds of run alternate, ``--repeats`` times, so that
machine noise hits them alike; each line is the median wall time (process
start to exit) and the median peak RSS (``ru_maxrss`` from ``os.wait4``),
and the ratios are those of the medians. On a shared machine the times
move from run to run: compare the ratios, not the seconds.
"""

import argparse
import json
import pathlib
import statistics
import sys
import tempfile

import PIL.Image

from upscale_memory import child_run, photograph

# The floor: NumPy, Pillow and LiteRT, nothing of cmsc_tf. argv: model, tile,
# halo, threads, scale, input, output.
BARE = """
import sys
import numpy as np
import PIL.Image
from ai_edge_litert.interpreter import Interpreter

model, tile, halo, threads, scale, source, target = sys.argv[1:]
tile, halo, threads, scale = int(tile), int(halo), int(threads), float(scale)
image = PIL.Image.open(source).convert("RGB")
size = (int(np.ceil(image.width * scale)), int(np.ceil(image.height * scale)))
y, cb, cr = image.resize(size, PIL.Image.BICUBIC).convert("YCbCr").split()
y = np.asarray(y, np.float32) / 255
interpreter = Interpreter(model_path=model, num_threads=threads)
index_in = interpreter.get_input_details()[0]["index"]
index_out = interpreter.get_output_details()[0]["index"]
result = np.empty_like(y)
height, width = y.shape
for top in range(0, height, tile):
    for left in range(0, width, tile):
        r0, c0 = max(top - halo, 0), max(left - halo, 0)
        crop = y[r0 : min(top + tile + halo, height), c0 : min(left + tile + halo, width)]
        interpreter.resize_tensor_input(index_in, (1, *crop.shape, 1), strict=True)
        interpreter.allocate_tensors()
        interpreter.set_tensor(index_in, crop[None, :, :, None])
        interpreter.invoke()
        out = interpreter.get_tensor(index_out)[0, :, :, 0]
        result[top : top + tile, left : left + tile] = out[top - r0 : top - r0 + tile, left - c0 : left - c0 + tile]
y = PIL.Image.fromarray(np.clip(np.floor(result * 255 + 0.5), 0, 255).astype(np.uint8))
PIL.Image.merge("YCbCr", (y, cb, cr)).convert("RGB").save(target)
"""


def cli_command():
    """The installed ``cmsc-upscale`` beside this Python, else its module form."""
    script = pathlib.Path(sys.executable).with_name("cmsc-upscale")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "cmsc_tf.deploy.cli"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[128, 512])
    parser.add_argument("--scale", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no_float32", action="store_true", help="skip the float32 (TensorFlow) runs")
    args = parser.parse_args()
    # TensorFlow-free, as the default path is.
    from cmsc_tf.deploy.tflite import available_cores
    from cmsc_tf.deploy.tiling import DEFAULT_TILE
    from cmsc_tf.models import presets

    model = presets.preset_path(presets.DEFAULT_PRESET, "tflite_dynamic_int8")
    halo = json.loads(pathlib.Path(f"{model}.json").read_text())["receptive_radius"]
    threads = available_cores()
    print(f"{model.name}: tile {DEFAULT_TILE}, halo {halo}, {threads} threads, x{args.scale:g}, "
          f"median of {args.repeats} runs each; {' '.join(cli_command())}")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        for size in args.sizes:
            source = folder / f"photo{size}.png"
            PIL.Image.fromarray(photograph(size)).save(source)
            runs = {
                "cmsc-upscale": cli_command() + [str(source), "--scale", str(args.scale), "--out", str(folder / "cli")],
                "bare LiteRT script": [sys.executable, "-c", BARE, str(model), str(DEFAULT_TILE), str(halo),
                                       str(threads), str(args.scale), str(source), str(folder / "bare.png")],
            }
            if not args.no_float32:
                runs["cmsc-upscale --precision float32"] = runs["cmsc-upscale"] + ["--precision", "float32"]
            measured = {name: [] for name in runs}
            for _ in range(args.repeats):
                for name, command in runs.items():
                    measured[name].append(child_run(command))
            medians = {name: (statistics.median(m for m, _ in runs_), statistics.median(s for _, s in runs_))
                       for name, runs_ in measured.items()}
            bare_mb, bare_s = medians["bare LiteRT script"]
            for name, (mb, seconds) in medians.items():
                rows.append((f"{size}x{size}", name, seconds, mb, seconds / bare_s, mb / bare_mb))
        refused = [child_run(cli_command() + [str(source), "--scale", "2", "--model", "cmsc_tiny",
                                               "--out", str(folder / "cli")], expected_code=2)
                   for _ in range(args.repeats)]
        rows.append(("-", "cmsc-upscale --model cmsc_tiny (refused)", statistics.median(s for _, s in refused),
                     statistics.median(m for m, _ in refused), None, None))
    print("| input | process | wall time (s) | peak RSS (MB) | time vs bare | memory vs bare |")
    print("| --- | --- | --- | --- | --- | --- |")
    for size, name, seconds, mb, time_ratio, memory_ratio in rows:
        ratios = f"{time_ratio:.2f}x | {memory_ratio:.2f}x" if time_ratio else "- | -"
        print(f"| {size} | {name} | {seconds:.2f} | {mb:,.0f} | {ratios} |")


if __name__ == "__main__":
    main()
