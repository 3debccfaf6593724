"""Fuzzing the encoded-bytes signature (``upscale_encoded``) with hostile files (issue 15).

The contract: whatever the bytes, the answer is a correct image or a clear
``InvalidArgumentError``; never another exception, a hang, or an allocation
beyond the pixel budget. Images are kept tiny and crafted headers are either
tiny or over the budget, so each example costs milliseconds.
"""

import io
import math
import re
import resource
import struct

import numpy as np
import PIL.Image
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cmsc_tf.io.pixel_budget import MAX_INPUT_PIXELS, MAX_SIDE
from cmsc_tf.deploy.saved_model import export_saved_model
from deploy_models import bmp_header, png_header, small_cmsc


@pytest.fixture(scope="module")
def upscale_encoded(tmp_path_factory):
    path = export_saved_model(small_cmsc(), tmp_path_factory.mktemp("savedmodels"), "tiny")
    signature = tf.saved_model.load(str(path)).signatures["upscale_encoded"]
    PEAK_RSS_KIB["before"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return signature


PEAK_RSS_KIB = {}


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


def decoded_size(data):
    """The (height, width) TensorFlow decodes ``data`` to, or None if it cannot."""
    try:
        return tuple(tf.io.decode_image(data, channels=3, expand_animations=False).shape[:2])
    except tf.errors.InvalidArgumentError:
        return None


@settings(max_examples=80, deadline=5000, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batch=st.lists(files, min_size=1, max_size=2), scale=st.sampled_from([1.0, 1.5, 2.0, 3.3, 8.0]))
def test_hostile_bytes_give_a_clear_error_or_a_correct_image(upscale_encoded, batch, scale):
    try:
        out = upscale_encoded(image_bytes=tf.constant(batch), scale=tf.constant(scale))["png_bytes"].numpy()
    except tf.errors.InvalidArgumentError as error:
        assert "image " in error.message or "batch" in error.message  # names the image (or the batch)
        event("refused: " + re.sub(r"\d+", "N", error.message.split("assertion failed: [")[-1])[:60])
        return
    event("upscaled")
    assert len(out) == len(batch)
    for data, png in zip(batch, out):
        size = decoded_size(data)
        assert size is not None  # accepted, so TensorFlow's own decoder reads it
        expected = tuple(math.ceil(n * round(scale, 6)) for n in size) + (3,)
        assert tf.io.decode_png(png).shape == expected


def test_fuzzing_stayed_within_memory(upscale_encoded):
    # Runs after the fuzz test (file order): the process's peak grew far less than one
    # decoded crafted header over the budget would take (8193 x 8193 RGB: 200 MB; most: GBs).
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - PEAK_RSS_KIB["before"]) / 1024
    assert grown_mib < 200
