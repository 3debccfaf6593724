"""Peak memory of the SavedModel's ``upscale_encoded`` signature on a request at the pixel budget's limit.

Usage: python benchmarks/serving_memory.py [--model savedmodels/cmsc_compact.keras] [--size 2048]
           [--scale 4] [--tile 512] [--memory_cap_gb 12]

The model (a ``.keras`` file) is exported with
:func:`cmsc_tf.deploy.saved_model.export_saved_model` (tile ``--tile``) to a
temporary folder; a child process loads it and sends one request: a flat
grey ``size x size`` PNG (a few KB: the hostile case, a tiny request asking
for the largest output) at ``--scale``; the defaults give 8192 x 8192, the
output limit exactly. The child runs under an address-space cap
(``RLIMIT_AS``, ``--memory_cap_gb``) so that a graph that is not bounded
fails instead of exhausting the machine. Printed: the child's exit status, its
peak RSS (``ru_maxrss`` from ``os.wait4``), the request's wall time and the
output's size. The first line is the same child on a 64 x 64 request: the
process's own footprint (TensorFlow, the loaded graph), for scale.
"""

import argparse
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]

CHILD = """
import sys, time
import numpy as np, tensorflow as tf
signature = tf.saved_model.load(sys.argv[1]).signatures["upscale_encoded"]
png = tf.io.encode_png(np.full((int(sys.argv[2]), int(sys.argv[2]), 3), 128, np.uint8))
start = time.perf_counter()
out = signature(image_bytes=tf.reshape(png, [1]), scale=tf.constant(float(sys.argv[3])))["png_bytes"]
size = tf.image.decode_png(out[0]).shape
print(f"request: {len(png.numpy())} bytes in, {size[1]}x{size[0]} out in {time.perf_counter() - start:.1f} s", flush=True)
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(REPO / "savedmodels" / "cmsc_compact.keras"))
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--scale", type=float, default=4.0)
    parser.add_argument("--tile", type=int, default=None, help="default: tiling.DEFAULT_TILE")
    parser.add_argument("--memory_cap_gb", type=float, default=12.0)
    args = parser.parse_args()
    import keras

    import cmsc_tf  # noqa: F401  (registers the layers)
    from cmsc_tf.deploy.saved_model import export_saved_model
    from cmsc_tf.deploy.tiling import DEFAULT_TILE

    model = keras.saving.load_model(args.model, compile=False, safe_mode=True)
    with tempfile.TemporaryDirectory() as scratch:
        path = export_saved_model(model, scratch, "bench", tile=args.tile or DEFAULT_TILE)
        for size in (64, args.size):
            start = time.perf_counter()
            code, peak_mb, output = measure(path, size, args.scale, int(args.memory_cap_gb * 2**30))
            print(f"{size}x{size} at x{args.scale:g} (tile {args.tile or DEFAULT_TILE}, cap {args.memory_cap_gb:g} GB): "
                  f"exit {code}, peak RSS {peak_mb:,.0f} MB, {time.perf_counter() - start:.1f} s with start-up; {output}",
                  flush=True)


def measure(saved_model, size, scale, cap_bytes):
    """(exit code, peak RSS in MB, last output line) of one request in a fresh capped process."""

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (cap_bytes, cap_bytes))

    with tempfile.TemporaryFile("w+") as log:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(saved_model), str(size), str(scale)],
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=limit,
            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        )
        # wait4: this child's own rusage (RUSAGE_CHILDREN would be the max over all children).
        _, status, usage = os.wait4(child.pid, 0)
        log.seek(0)
        lines = log.read().strip().splitlines()
    return os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024, lines[-1] if lines else ""


if __name__ == "__main__":
    main()
