"""Hypothesis strategies of hostile image files (issue 15): random bytes, real images of
every mode and format (maybe truncated or with a flipped byte), and crafted PNG / BMP /
JPEG headers whose sizes are tiny or over the pixel budget (never a long legal job)."""

import io
import struct

import numpy as np
import PIL.Image
from hypothesis import strategies as st

from cmsc_tf.io.pixel_budget import MAX_INPUT_PIXELS, MAX_SIDE
from deploy_models import bmp_header, png_header

MODES = {  # PIL mode -> formats that can hold it
    "1": ("PNG", "BMP"),
    "L": ("PNG", "JPEG", "BMP", "GIF"),
    "P": ("PNG", "BMP", "GIF"),
    "LA": ("PNG",),
    "I;16": ("PNG",),
    "RGB": ("PNG", "JPEG", "BMP", "GIF"),
    "RGBA": ("PNG", "BMP"),
    "CMYK": ("JPEG",),
}


@st.composite
def real_files(draw):
    """A small image in a random mode and format, maybe cut short or with a flipped byte."""
    mode = draw(st.sampled_from(sorted(MODES)))
    fmt = draw(st.sampled_from(MODES[mode]))
    height, width = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    seed = draw(st.integers(0, 2**16))
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 4), dtype=np.uint8)
    image = PIL.Image.fromarray(pixels, "RGBA").convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"interlace": 1} if fmt == "PNG" and draw(st.booleans()) else {}))
    data = buffer.getvalue()
    damage = draw(st.sampled_from(["none", "truncate", "flip"]))
    if damage == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif damage == "flip":
        position = draw(st.integers(0, len(data) - 1))
        data = data[:position] + bytes([data[position] ^ draw(st.integers(1, 255))]) + data[position + 1 :]
    return data


def sizes(draw):
    """(width, height): both tiny, or at least one over the budget (so never a long legal job)."""
    tiny = st.integers(0, 32)
    huge = st.one_of(st.integers(MAX_SIDE + 1, 2**31 - 1), st.integers(8193, MAX_SIDE))
    if draw(st.booleans()):
        return draw(tiny), draw(tiny)
    width, height = draw(huge), draw(st.one_of(huge, tiny))
    if width * height <= MAX_INPUT_PIXELS and max(width, height) <= MAX_SIDE:
        height = MAX_SIDE + 1  # a mid-sized side with a tiny one would be a legal, slow job
    return (width, height) if draw(st.booleans()) else (height, width)


@st.composite
def crafted_headers(draw):
    """PNG / BMP / JPEG headers with arbitrary sizes and modes, followed by junk."""
    width, height = sizes(draw)
    junk = draw(st.binary(max_size=64))
    kind = draw(st.sampled_from(["png", "bmp", "jpeg"]))
    if kind == "png":
        bit_depth = draw(st.sampled_from([1, 2, 4, 8, 16, 3, 0, 255]))
        color_type = draw(st.sampled_from([0, 2, 3, 4, 6, 1, 7]))
        return png_header(min(width, 2**32 - 1), height, bit_depth, color_type) + junk
    if kind == "bmp":
        return bmp_header(min(width, 2**31 - 1), -min(height, 2**31 - 1) if draw(st.booleans()) else height) + junk
    # SOI, then a baseline SOF0 frame header (JPEG sizes are 16-bit).
    width, height = min(width, 65535), min(height, 65535)
    components = draw(st.sampled_from([1, 3, 4]))
    sof = struct.pack(">BHHB", 8, height, width, components) + b"".join(
        bytes([i + 1, 0x11, 0]) for i in range(components)
    )
    return b"\xff\xd8\xff\xc0" + struct.pack(">H", 2 + len(sof)) + sof + junk


files = st.one_of(st.binary(max_size=128), real_files(), crafted_headers())
