"""Peak memory of ``cmsc-upscale`` by image size, and the time tiling costs.

Usage: python benchmarks/upscale_memory.py [--sizes 1000 2000 4000] [--scale 2]
           [--model savedmodels/cmsc_compact/1] [--overhead_size 600] [--tile 512]

Memory: for each ``size``, a ``size x size`` RGB PNG is written, then the
command line (``python -m cmsc_tf.deploy.cli``, default tiling) upscales it
in a child process; the child's peak RSS (``ru_maxrss`` from ``os.wait4``)
and wall time are printed. The input and output are uint8 (3 and
``3 * scale^2`` bytes per input pixel); everything else must stay the size
of one tile.
Overhead: ``Upscaler`` on one ``overhead_size`` square image, untiled and
with ``--tile``, best of two runs each, in this process.
"""

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np
import PIL.Image

REPO = pathlib.Path(__file__).resolve().parents[1]


def photo_like(size, seed=0):
    """A smooth random RGB image with noise (compute does not depend on content)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (size // 16 + 2, size // 16 + 2, 3)).astype(np.float32)
    image = np.repeat(np.repeat(coarse, 16, 0), 16, 1)[:size, :size]
    return np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)


def cli_peak(path, scale, model, out_dir):
    """(peak RSS in MB, seconds) of one ``cmsc-upscale`` run in a child process."""
    command = [sys.executable, "-m", "cmsc_tf.deploy.cli", str(path), "--scale", str(scale), "--out", str(out_dir)]
    if model:
        command += ["--model", model]
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    # wait4: this child's own rusage (RUSAGE_CHILDREN would be the max over all children).
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command)} failed with status {status}")
    return usage.ru_maxrss / 1024, seconds  # Linux: KiB


def tiling_overhead(size, scale, model, tile):
    """Best-of-two seconds of ``Upscaler`` untiled and tiled on one image."""
    from cmsc_tf.deploy import loader
    from cmsc_tf.deploy.upscaler import Upscaler

    image = photo_like(size, seed=1)
    timings = {}
    for name, tile_side in (("untiled", None), (f"tile {tile}", tile)):
        upscaler = Upscaler(model or loader.default_model_path(), tile=tile_side)
        upscaler.upscale(image[:64, :64], scale)  # trace outside the timing
        runs = []
        for _ in range(2):
            start = time.perf_counter()
            upscaler.upscale(image, scale)
            runs.append(time.perf_counter() - start)
        timings[name] = min(runs)
    return timings


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 2000, 4000])
    parser.add_argument("--scale", type=float, default=2.0)
    parser.add_argument("--model", default=None, help="default: the CLI's default model")
    parser.add_argument("--overhead_size", type=int, default=600, help="0 skips the overhead timing")
    parser.add_argument("--tile", type=int, default=512)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            path = pathlib.Path(folder) / f"in{size}.png"
            PIL.Image.fromarray(photo_like(size)).save(path, compress_level=1)
            peak_mb, seconds = cli_peak(path, args.scale, args.model, pathlib.Path(folder) / "out")
            out = int(np.ceil(size * args.scale))
            print(f"{size}x{size} x{args.scale:g} -> {out}x{out}: peak RSS {peak_mb:,.0f} MB, {seconds:.0f} s", flush=True)
    if args.overhead_size:
        timings = tiling_overhead(args.overhead_size, args.scale, args.model, args.tile)
        print(f"{args.overhead_size}x{args.overhead_size} x{args.scale:g} Upscaler: "
              + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in timings.items()))


if __name__ == "__main__":
    main()
