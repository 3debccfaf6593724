"""What refusing an image over the pixel budget costs, in time and memory, on every entry point.

Usage: python benchmarks/refusal_costs.py [--saved_model cmsc_compact] [--no_serving]

The hostile files are valid, flat PNGs that cost next to nothing on disk
(``tests/png_bombs.py``): an 8-bit RGB and a 16-bit gray 13000 x 13000 (over
the input limit; 507 and 338 MB of pixels), an 8-bit RGB and a 16-bit gray
8192 x 8192 at x2 (inside the input limit, a 16384 x 16384 output over the
output limit), and an 8-bit RGB 4000 x 4000 and 4200 x 4200 at x8 (a 3 GB
output; the second's sides are over the limit too). Each is refused through:

* ``Upscaler(path)``, ``Upscaler(PIL.Image.open(path))`` and a NumPy array
  of the image's shape and dtype (a zero-strided view, so the array itself
  costs nothing), with the default model, in this process: the seconds of
  the call, how far it raised this process's RSS (peak growth) and the
  process's peak RSS during it (the peak is reset before each call,
  ``/proc/self/clear_refs``);
* ``cmsc-upscale`` in a child process: its whole run, start to exit (Python,
  imports, the model), and its peak RSS (``ru_maxrss`` from ``os.wait4``);
* the SavedModel's ``upscale_encoded`` signature (the bytes a TF-Serving
  client sends), in this process after one small request has traced it
  (skipped with ``--no_serving``).

Every row must be a refusal (the script stops otherwise), under 2 s and
1.5 GB; the tests that the refusals come from the header or the shape,
before decoding, are in tests/deploy/test_entry_budget.py.
"""

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's notices of each refused request
REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import png_bombs  # noqa: E402  (the repository's hostile-file writer)

# (name, width, height, bit depth, PNG colour type, scale)
CASES = [
    ("13000x13000 8-bit RGB (bomb)", 13000, 13000, 8, 2, 2.0),
    ("13000x13000 16-bit gray", 13000, 13000, 16, 0, 2.0),
    ("8192x8192 8-bit RGB at x2", 8192, 8192, 8, 2, 2.0),
    ("8192x8192 16-bit gray at x2", 8192, 8192, 16, 0, 2.0),
    ("4000x4000 8-bit RGB at x8", 4000, 4000, 8, 2, 8.0),   # a 1-gigapixel output
    ("4200x4200 8-bit RGB at x8", 4200, 4200, 8, 2, 8.0),   # and a side over MAX_SIDE
]


def _status_kib(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def measure(refuse):
    """(seconds, peak growth in MB, peak RSS during the call in MB, the error) of ``refuse()``, which must raise."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")  # the peak (VmHWM) starts again from the current RSS
    before = _status_kib("VmRSS")
    start = time.perf_counter()
    try:
        refuse()
    except Exception as error:  # noqa: BLE001 (the refusal is the point)
        seconds = time.perf_counter() - start
        peak = _status_kib("VmHWM")
        return seconds, (peak - before) / 1024, peak / 1024, error
    raise RuntimeError("the hostile input was accepted")


def cli_run(path, scale, out):
    """(seconds, peak RSS in MB, error line) of ``cmsc-upscale`` refusing ``path``."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        child = subprocess.Popen([sys.executable, "-m", "cmsc_tf.deploy.cli", str(path), "--scale", str(scale),
                                  "--out", str(out)], env=env, stdout=subprocess.DEVNULL, stderr=log)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        log.seek(0)
        last = [line for line in log.read().splitlines() if "error:" in line][-1]
    if os.waitstatus_to_exitcode(status) != 1:
        raise RuntimeError(f"cmsc-upscale exited with {os.waitstatus_to_exitcode(status)}: {last}")
    return seconds, usage.ru_maxrss / 1024, last


def row(case, entry, seconds, growth, peak, message):
    assert seconds < 2 and peak < 1536, (case, entry, seconds, peak)
    growth = "-" if growth is None else f"{growth:,.0f}"
    print(f"| {case} | {entry} | {seconds:.3f} | {growth} | {peak:,.0f} | {message[:90]} |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saved_model", default="cmsc_compact", help="a SavedModel folder or a preset name")
    parser.add_argument("--no_serving", action="store_true", help="skip upscale_encoded (loads TensorFlow)")
    args = parser.parse_args()

    import PIL.Image

    from cmsc_tf.deploy.upscaler import Upscaler
    from cmsc_tf.io import images, pixel_budget
    from cmsc_tf.models import presets

    upscaler = Upscaler("cmsc_compact")  # the default model, as cmsc-upscale runs it
    refused = (images.ImageError, pixel_budget.PixelBudgetError)
    print("| image | entry point | seconds | peak growth (MB) | peak RSS (MB) | message |")
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        files = []
        for name, width, height, bit_depth, colour_type, scale in CASES:
            path = folder / f"{width}x{height}-{bit_depth}.png"
            png_bombs.write_constant_png(path, width, height, bit_depth=bit_depth, colour_type=colour_type)
            files.append((name, path, scale))
            case = f"{name} ({path.stat().st_size / 1e3:,.0f} KB)"
            array = np.broadcast_to(np.zeros((), np.uint16 if bit_depth == 16 else np.uint8),
                                    (height, width) if colour_type == 0 else (height, width, 3))

            def with_pil():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)  # Pillow's own, lower limit
                    image = PIL.Image.open(path)
                with image:
                    upscaler.upscale(image, scale)

            for entry, refuse in (("Upscaler(path)", lambda: upscaler.upscale(path, scale)),
                                  ("Upscaler(PIL image)", with_pil),
                                  ("Upscaler(array)", lambda: upscaler.upscale(array, scale))):
                seconds, growth, peak, error = measure(refuse)
                assert isinstance(error, refused), repr(error)
                row(case, entry, seconds, growth, peak, str(error).replace(str(path), "<file>"))
            seconds, peak, last = cli_run(path, scale, folder / "out")
            row(case, "cmsc-upscale (whole process)", seconds, None, peak, last.replace(str(path), "<file>"))

        if args.no_serving:
            return
        import tensorflow as tf

        signature = tf.saved_model.load(str(presets.resolve(args.saved_model))).signatures["upscale_encoded"]
        tiny = tf.io.encode_png(np.zeros((8, 8, 3), np.uint8))
        signature(image_bytes=tf.stack([tiny]), scale=tf.constant(2.0))  # traced and warm
        for name, path, scale in files:
            data = tf.constant([path.read_bytes()])
            seconds, growth, peak, error = measure(
                lambda: signature(image_bytes=data, scale=tf.constant(scale)))
            assert isinstance(error, tf.errors.InvalidArgumentError), repr(error)
            message = error.message.split("assertion failed: ")[-1].split("\n")[0].strip("[]")
            row(f"{name} ({path.stat().st_size / 1e3:,.0f} KB)", "upscale_encoded (bytes)", seconds, growth, peak,
                message)


if __name__ == "__main__":
    main()
