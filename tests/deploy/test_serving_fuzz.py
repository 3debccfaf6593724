"""Fuzzing the encoded-bytes signature (``upscale_encoded``) with hostile files (issue 15).

The contract: whatever the bytes, the answer is a correct image or a clear
``InvalidArgumentError``; never another exception, a hang, or an allocation
beyond the pixel budget. Images are kept tiny and crafted headers are either
tiny or over the budget, so each example costs milliseconds.
"""

import math
import re

import pytest
import tensorflow as tf
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cmsc_tf.deploy.saved_model import export_saved_model
from deploy_models import small_cmsc
from hostile_files import files
from peak_memory import peak_growth_mib


@pytest.fixture(scope="module")
def upscale_encoded(tmp_path_factory):
    path = export_saved_model(small_cmsc(), tmp_path_factory.mktemp("savedmodels"), "tiny")
    return tf.saved_model.load(str(path)).signatures["upscale_encoded"]


def decoded_size(data):
    """The (height, width) TensorFlow decodes ``data`` to, or None if it cannot."""
    try:
        return tuple(tf.io.decode_image(data, channels=3, expand_animations=False).shape[:2])
    except tf.errors.InvalidArgumentError:
        return None


def check_one_request(upscale_encoded, batch, scale):
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


def test_hostile_bytes_give_a_clear_error_or_a_correct_image_within_memory(upscale_encoded):
    # No deadline: time is benchmarks/refusal_costs.py's, not a test's.
    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(batch=st.lists(files, min_size=1, max_size=2), scale=st.sampled_from([1.0, 1.5, 2.0, 3.3, 8.0]))
    def fuzz(batch, scale):
        check_one_request(upscale_encoded, batch, scale)

    # The peak grew far less than one decoded crafted header over the budget
    # would take (8193 x 8193 RGB: 200 MB; most: GBs).
    assert peak_growth_mib(fuzz) < 200
