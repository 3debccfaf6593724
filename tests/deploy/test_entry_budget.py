"""One pixel budget on every entry point, checked on sizes before any pixel is decoded (issue 23, points 2-4, 7).

A header-only file (a PNG signature and IHDR, no pixel data) stands for an
image of any size: a refusal from the header names the limit, while any
decoding attempt would fail on the missing data instead, or run
``PIL.ImageFile.ImageFile.load``, which these tests watch.
"""

import struct
import warnings
import zlib

import numpy as np
import PIL.Image
import PIL.ImageFile
import pytest

from cmsc_tf.deploy import cli
from cmsc_tf.deploy.upscaler import Upscaler
from cmsc_tf.io import images, pixel_budget
from deploy_models import bicubic_cmsc, png_header, random_rgb
from peak_memory import peak_growth_mib
from png_bombs import write_constant_png


@pytest.fixture(scope="module")
def upscaler():
    return Upscaler(bicubic_cmsc())


@pytest.fixture
def decodes(monkeypatch):
    """The images whose pixels were loaded (Pillow decodes in ImageFile.load)."""
    loaded = []
    original = PIL.ImageFile.ImageFile.load

    def load(self):
        loaded.append(self.size)
        return original(self)

    monkeypatch.setattr(PIL.ImageFile.ImageFile, "load", load)
    return loaded


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def header_file(tmp_path, width, height, bit_depth=8, color_type=2):
    """A PNG of ``width x height`` whose pixel data is a few bytes: Pillow opens it, decoding it fails."""
    path = tmp_path / f"{width}x{height}.png"
    path.write_bytes(png_header(width, height, bit_depth, color_type) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("size,scale,limit", [
    ((13000, 13000), 1, "over the input limit"),     # 16-bit gray: 4 GB decoded before
    ((8192, 8192), 2, "over the output limit"),
])
def test_pil_images_are_refused_from_their_size(upscaler, tmp_path, decodes, size, scale, limit):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)  # Pillow's own, lower limit
        image = PIL.Image.open(header_file(tmp_path, *size, bit_depth=16, color_type=0))
    with image:
        with pytest.raises(pixel_budget.PixelBudgetError, match=limit):
            upscaler.upscale(image, scale)
    assert decodes == []


def test_paths_are_refused_from_the_header_for_their_output(upscaler, tmp_path, decodes):
    path = header_file(tmp_path, 8192, 8192)
    with pytest.raises(images.ImageTooLargeError, match=rf"^{path}: output: 16384x16384 pixels is over the output limit"):
        upscaler.upscale(path, 2)
    assert decodes == []


def test_the_cli_refuses_an_absurd_output_before_decoding(tmp_path, decodes, capsys):
    path = header_file(tmp_path, 8192, 8192, bit_depth=16)
    model = tmp_path / "m.keras"
    bicubic_cmsc().save(model)

    code = cli.run_cli([str(path), "--scale", "2", "--model", str(model), "--out", str(tmp_path / "out")])

    assert code == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert errors == [f"cmsc-upscale: error: {path}: output: 16384x16384 pixels is over the output limit "
                      "(67,108,864 pixels, 32768 per side); use a smaller scale or image"]
    assert [size for size in decodes if size == (8192, 8192)] == []


def test_a_pil_image_is_made_upright_as_its_file_is(upscaler, tmp_path):
    rgb = random_rgb(10, 16, seed=7)
    exif = PIL.Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    PIL.Image.fromarray(rgb).save(tmp_path / "turned.png", exif=exif)

    with PIL.Image.open(tmp_path / "turned.png") as image:
        from_pil = np.asarray(upscaler.upscale(image, 2))
    from_path = upscaler.upscale(tmp_path / "turned.png", 2)

    assert from_pil.shape == from_path.shape == (32, 20, 3)
    np.testing.assert_array_equal(from_pil, from_path)
    np.testing.assert_array_equal(from_path, upscaler.upscale(np.rot90(rgb, -1), 2))


@pytest.mark.parametrize("tile", [0, 1025, 4000])
def test_tile_is_bounded_with_a_clear_message(tile, capsys):
    with pytest.raises(ValueError, match=r"tile must be a whole number of pixels from 1 to 1024"):
        Upscaler(bicubic_cmsc(), tile=tile)
    assert cli.run_cli(["x.png", "--scale", "2", "--tile", str(tile)]) == 2
    assert capsys.readouterr().err.startswith("cmsc-upscale: error: argument --tile: must be a whole number")


@pytest.mark.parametrize("width,height,bit_depth,colour_type,limit", [
    (13000, 13000, 8, 2, "over the input limit"),    # 507 MB of pixels
    (13000, 13000, 16, 0, "over the input limit"),   # 338 MB; 4 GB and 7 s through a PIL image before
    (8192, 8192, 8, 2, "over the output limit"),     # 201 MB; 1.5 GB and 1.3 s in the CLI before
    (8192, 8192, 16, 0, "over the output limit"),    # 134 MB; 2.2 GB and 3 s in the CLI before
])
def test_whole_hostile_pngs_are_refused_on_every_entry_without_decoding(upscaler, tmp_path, decodes, width, height,
                                                                          bit_depth, colour_type, limit):
    # Valid files that would decode (benchmarks/refusal_costs.py times these refusals).
    path = tmp_path / "bomb.png"
    write_constant_png(path, width, height, bit_depth=bit_depth, colour_type=colour_type)
    array = np.broadcast_to(np.zeros((), np.uint16 if bit_depth == 16 else np.uint8),
                            (height, width) if colour_type == 0 else (height, width, 3))  # no memory of its own

    def refuse_all():
        with pytest.raises(images.ImageTooLargeError, match=limit):
            upscaler.upscale(path, 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)
            image = PIL.Image.open(path)
        with image, pytest.raises(pixel_budget.PixelBudgetError, match=limit):
            upscaler.upscale(image, 2)
        with pytest.raises(pixel_budget.PixelBudgetError, match=limit):
            upscaler.upscale(array, 2)

    # Far below the smallest of these decoded (134 MB), let alone its converted copies.
    assert peak_growth_mib(refuse_all) < 50
    assert decodes == []
