"""read_image: the pixel budget from the header (before decoding), Pillow's bomb guard, EXIF orientation."""

import json
import os
import struct
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest

from cmsc_tf.io import images, pixel_budget
from tests import png_bombs

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# cmsc_tf/__init__.py imports Keras (and TensorFlow): hundreds of MB that are
# not the read's (benchmarks/refusal_costs.py times the read). The packages are stubbed so only the reader loads.
_MEASURE = """
import json, os, resource, sys, types
for name in ("cmsc_tf", "cmsc_tf.io"):
    package = types.ModuleType(name)
    package.__path__ = [os.path.join(sys.argv[2], *name.split("."))]
    sys.modules[name] = package
from cmsc_tf.io import images
assert "tensorflow" not in sys.modules
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    images.read_image(sys.argv[1])
    error = None
except images.ImageError as caught:
    error = [type(caught).__name__, str(caught)]
grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024  # Linux: KiB
print(json.dumps({"error": error, "grown_mb": grown_mb}))
"""


def _read_in_subprocess(path):
    # A fresh process, so that its peak RSS is this read's and nothing else's.
    done = subprocess.run([sys.executable, "-c", _MEASURE, str(path), REPO_ROOT], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("bit_depth", [8, 16])
def test_a_small_file_with_a_huge_header_is_refused_cheaply(tmp_path, bit_depth):
    path = tmp_path / f"bomb{bit_depth}.png"
    png_bombs.write_constant_png(path, 13000, 13000, bit_depth=bit_depth, colour_type=2 if bit_depth == 8 else 0)
    assert path.stat().st_size < 2_000_000  # decoded: 507 MB (RGB) or 338 MB (16-bit gray), and more as arrays
    result = _read_in_subprocess(path)
    assert result["error"] is not None and result["error"][0] == "ImageTooLargeError"
    assert "13000x13000" in result["error"][1] and "over the input limit" in result["error"][1]
    assert result["grown_mb"] < 100  # a header read; decoding would take gigabytes


@pytest.mark.parametrize("size", [(9000, 9000), (10000, 10000), (20000, 20000), (40000, 4)])
def test_every_oversized_header_raises_one_error_type(tmp_path, size):
    # 9000^2 is over our budget but under Pillow's warning (89.5 Mpx); 10000^2
    # triggers Pillow's DecompressionBombWarning, 20000^2 its error; 40000 x 4
    # is small but over the side limit. All must read as the budget's error.
    path = tmp_path / "big.png"
    header = struct.pack(">IIBBBBB", *size, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_bombs.chunk(b"IHDR", header) + png_bombs.chunk(b"IEND", b""))
    with pytest.raises(images.ImageTooLargeError, match="big.png") as caught:
        images.read_image(path)
    assert isinstance(caught.value, images.ImageError) and isinstance(caught.value, pixel_budget.PixelBudgetError)


def test_images_within_the_budget_are_read(tmp_path):
    # The bomb writer's files are valid PNGs: what is refused above is their size.
    for width, height, bit_depth, colour_type in ((300, 2, 8, 0), (1300, 1300, 8, 2), (700, 900, 16, 0)):
        path = tmp_path / "ok.png"
        png_bombs.write_constant_png(path, width, height, bit_depth, colour_type)
        array = images.read_image(path)
        assert array.shape[:2] == (height, width) and not array.any()


def _sideways_photo():
    """40 x 20 stored, a bright left column: upright (EXIF orientation 6: rotate
    90 degrees clockwise) it is 20 x 40 with the bright band along the top."""
    stored = np.full((20, 40, 3), 30, np.uint8)
    stored[:, :4] = 240
    return stored


def test_exif_orientation_is_applied_on_read_and_not_written(tmp_path):
    exif = PIL.Image.Exif()
    exif[0x0112] = 6  # Orientation
    path = tmp_path / "phone.jpg"
    PIL.Image.fromarray(_sideways_photo()).save(path, quality=95, exif=exif)
    upright = images.read_image(path)
    assert upright.shape == (40, 20, 3)
    assert upright[:4].mean() > 200 and upright[6:].mean() < 60
    # Stored pixels rotated clockwise: the stored column x is the upright row x.
    stored = np.asarray(PIL.Image.open(path))
    np.testing.assert_array_equal(upright, np.rot90(stored, k=-1))
    # Written files carry no orientation, so no viewer rotates the pixels again.
    out = tmp_path / "out.jpg"
    images.write_image(out, upright)
    with PIL.Image.open(out) as written:
        assert written.size == (20, 40) and 0x0112 not in written.getexif()
