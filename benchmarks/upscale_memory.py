"""``cmsc-upscale`` end to end on photographs: wall time and peak memory, tiled (default tile) and untiled.

Usage: python benchmarks/upscale_memory.py [--sizes 1000] [--scale 2] [--model cmsc_compact]
           [--precision float32] [--tile 512] [--no_untiled]

For each ``size``, a ``size x size`` photograph (the centre of skimage's
``retina.jpg``, 1411 x 1411, mirrored outwards beyond that) is written as a
PNG, then the command line (``python -m cmsc_tf.deploy.cli``; its default
model, precision and tile unless given) upscales it in a child process,
once with the default tile and once untiled (``--tile`` as large as the
output); each child's peak RSS (``ru_maxrss`` from ``os.wait4``) and wall
time are printed, with the overhead of tiling over the untiled pass. Each
time includes the process start (imports, model loading): the first line
is a 64 x 64 image, for scale. For each size it also prints how many
more pixels the tiles' network passes compute than the image has (the halo
of the model's receptive radius around every tile, recomputed): the work
tiling adds, beside the time it costs. The input and output are uint8 (3 and
``3 * scale^2`` bytes per input pixel); with tiles, everything else stays
the size of one tile. Run the pairs on a quiet machine: this is one run
each, not a best of several.
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


def photograph(size):
    """A ``size x size`` uint8 RGB photograph: the centre of skimage's retina image, mirrored beyond its edges."""
    import skimage.data

    image = skimage.data.retina()
    side = image.shape[0]
    if size <= side:
        top = (side - size) // 2
        return np.ascontiguousarray(image[top : top + size, top : top + size])
    extra = size - side
    return np.pad(image, ((extra // 2, extra - extra // 2), (extra // 2, extra - extra // 2), (0, 0)), mode="symmetric")


def child_run(command, expected_code=0):
    """(peak RSS in MB, seconds) of ``command`` run as a child process, from its start to its exit."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # wait4: this child's own rusage (RUSAGE_CHILDREN would be the max over all children).
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != expected_code:
        raise RuntimeError(f"{' '.join(command)} exited with {os.waitstatus_to_exitcode(status)}, "
                           f"not {expected_code}")
    return usage.ru_maxrss / 1024, seconds  # Linux: KiB


def cli_run(path, scale, out_dir, options):
    """(peak RSS in MB, seconds) of one ``cmsc-upscale`` run in a child process."""
    command = [sys.executable, "-m", "cmsc_tf.deploy.cli", str(path), "--scale", str(scale), "--out", str(out_dir)]
    return child_run(command + options)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000])
    parser.add_argument("--scale", type=float, default=2.0)
    parser.add_argument("--model", default=None, help="default: the command line's default model")
    parser.add_argument("--precision", default=None, help="default: the command line's default for the model")
    parser.add_argument("--tile", type=int, default=None, help="default: the command line's default tile")
    parser.add_argument("--no_untiled", action="store_true", help="skip the untiled runs (memory grows with the image)")
    args = parser.parse_args()
    options = []
    if args.model:
        options += ["--model", args.model]
    if args.precision:
        options += ["--precision", args.precision]
    # After argument parsing: these import TensorFlow.
    from cmsc_tf.deploy.tiling import DEFAULT_TILE, tile_windows
    from cmsc_tf.deploy.upscaler import Upscaler
    from cmsc_tf.models.presets import DEFAULT_PRESET

    tile = args.tile or DEFAULT_TILE
    halo = Upscaler(args.model or DEFAULT_PRESET, precision=args.precision).halo
    print(f"cmsc-upscale {' '.join(options) or '(defaults)'}, x{args.scale:g}, tile {tile}, halo {halo}")
    with tempfile.TemporaryDirectory() as folder:
        folder = pathlib.Path(folder)
        for size in [64] + args.sizes:
            path = folder / f"photo{size}.png"
            PIL.Image.fromarray(photograph(size)).save(path, compress_level=1)
            out = int(np.ceil(size * args.scale))
            computed = sum((crop[0].stop - crop[0].start) * (crop[1].stop - crop[1].start)
                           for crop, _, _ in tile_windows(out, out, tile, halo))
            print(f"{size}x{size}: the tiles of {tile} compute {100 * (computed / out**2 - 1):+.0f} % pixels "
                  f"over the {out}x{out} output (halo {halo})", flush=True)
            runs = {f"tile {tile}": options + ["--tile", str(tile)]}
            if not args.no_untiled and size > 64:
                runs["untiled"] = options + ["--tile", str(out)]
            results = {}
            for name, run_options in runs.items():
                results[name] = cli_run(path, args.scale, folder / "out", run_options)
                peak_mb, seconds = results[name]
                print(f"{size}x{size} -> {out}x{out}, {name}: {seconds:.1f} s, peak RSS {peak_mb:,.0f} MB", flush=True)
            if "untiled" in results:
                tiled, untiled = results[f"tile {tile}"][1], results["untiled"][1]
                print(f"{size}x{size}: tiling overhead over one untiled pass: {100 * (tiled / untiled - 1):+.0f} %")


if __name__ == "__main__":
    main()
