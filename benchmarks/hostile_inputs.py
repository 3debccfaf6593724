"""How long refusing a hostile image takes: the header-first pixel budget on its two paths.

Usage: python benchmarks/hostile_inputs.py [--repeats 5] [--saved_model savedmodels/cmsc_compact/2]

* ``read_image`` (``cmsc_tf.io.images``, the command line's reader) on a valid
  13000 x 13000 PNG of a few hundred KB (8-bit RGB and 16-bit gray; 507 and
  338 MB decoded);
* the SavedModel's ``upscale_encoded`` signature on a ~47 KB 4000 x 4000 PNG and
  a 4200 x 4200 one at scale 8 (a 32000 x 32000 output; 3 GB).

Prints the best of ``--repeats`` seconds per refusal (the signature called once
first, so tracing is not counted). tests/io/test_images.py and
tests/deploy/test_serving_limits.py check that these are refused from the
header, before decoding; this script shows what that costs: milliseconds.
"""

import argparse
import pathlib
import sys
import tempfile
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import png_bombs  # noqa: E402  (the repository's hostile-file writer)


def best_seconds(refuse, repeats):
    """The best of ``repeats`` timings of ``refuse()``, which must raise (a refusal)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        try:
            refuse()
        except Exception as error:  # noqa: BLE001 (the refusal is the point; its type is checked below)
            seconds = time.perf_counter() - start
            refused = error
        else:
            raise RuntimeError("the hostile input was accepted")
        best = min(best, seconds)
    return best, refused


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--saved_model", default=str(REPO / "savedmodels" / "cmsc_compact" / "2"))
    args = parser.parse_args()

    from cmsc_tf.io import images

    with tempfile.TemporaryDirectory() as folder:
        for bit_depth, colour_type, label in ((8, 2, "8-bit RGB"), (16, 0, "16-bit gray")):
            path = pathlib.Path(folder) / f"bomb{bit_depth}.png"
            png_bombs.write_constant_png(path, 13000, 13000, bit_depth=bit_depth, colour_type=colour_type)
            seconds, error = best_seconds(lambda: images.read_image(path), args.repeats)
            assert isinstance(error, images.ImageTooLargeError), error
            print(f"read_image, 13000x13000 {label} PNG of {path.stat().st_size / 1e3:.0f} KB: "
                  f"refused in {seconds * 1e3:.3f} ms")

    import tensorflow as tf

    signature = tf.saved_model.load(args.saved_model).signatures["upscale_encoded"]
    tiny = tf.io.encode_png(np.zeros((8, 8, 3), np.uint8))
    signature(image_bytes=tf.stack([tiny]), scale=tf.constant(2.0))  # traced and warm
    for side in (4000, 4200):
        png = tf.io.encode_png(np.zeros((side, side, 3), np.uint8))
        seconds, error = best_seconds(
            lambda: signature(image_bytes=tf.stack([png]), scale=tf.constant(8.0)), args.repeats)
        assert isinstance(error, tf.errors.InvalidArgumentError), error
        print(f"upscale_encoded, {side}x{side} PNG of {len(png.numpy()) / 1e3:.0f} KB at scale 8: "
              f"refused in {seconds * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
