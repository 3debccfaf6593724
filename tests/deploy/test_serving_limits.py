"""The pixel budget in the SavedModel's graph: checked before any work, clear errors (issue 15)."""

import io

import numpy as np
import PIL.Image
import pytest
import tensorflow as tf

from cmsc_tf.deploy import serving_limits
from cmsc_tf.deploy.resampling import normalize_scale_tf
from cmsc_tf.deploy.saved_model import export_saved_model
from deploy_models import bmp_header, png_header, random_rgb, small_cmsc


@pytest.fixture(scope="module")
def saved_model_dir(tmp_path_factory):
    return export_saved_model(small_cmsc(), tmp_path_factory.mktemp("savedmodels"), "tiny")


@pytest.fixture(scope="module")
def signatures(saved_model_dir):
    return tf.saved_model.load(str(saved_model_dir)).signatures


def encode(image, fmt="PNG"):
    buffer = io.BytesIO()
    PIL.Image.fromarray(image).save(buffer, format=fmt)
    return buffer.getvalue()


def test_header_sizes_without_decoding():
    rgb = random_rgb(13, 21)
    cases = [
        (png_header(4000, 3000), serving_limits.PNG, 3000, 4000),
        (png_header(2**32 - 1, 1), serving_limits.PNG, 1, 2**32 - 1),
        (encode(rgb, "PNG"), serving_limits.PNG, 13, 21),
        (encode(rgb, "JPEG"), serving_limits.JPEG, 13, 21),
        (encode(rgb, "BMP"), serving_limits.BMP, 13, 21),
        (bmp_header(70000, -5), serving_limits.BMP, 5, 70000),  # top-down
        (encode(rgb, "GIF"), serving_limits.UNREADABLE, 0, 0),  # refused format
        (png_header(5, 5)[:20], serving_limits.UNREADABLE, 0, 0),  # header cut short
        (b"", serving_limits.UNREADABLE, 0, 0),
    ]
    for data, *expected in cases:
        assert [int(v) for v in serving_limits.header_size(tf.constant(data))] == expected


def test_malformed_jpeg_header_is_unreadable_not_an_error():
    fmt, height, width = serving_limits.encoded_sizes(tf.constant([png_header(3, 4), b"\xff\xd8\xff\xe0junk"]))
    assert fmt.numpy().tolist() == [serving_limits.PNG, serving_limits.UNREADABLE]
    assert height.numpy().tolist() == [4, 0]


SMALL = dict(max_side=10, max_input_pixels=50, max_output_pixels=80)


def check(heights, widths, scale, **limits):
    """Runs budget_checks eagerly (a refusal raises at once) with the small limits."""
    serving_limits.budget_checks(
        tf.constant(heights, tf.int64), tf.constant(widths, tf.int64), normalize_scale_tf(scale), **{**SMALL, **limits}
    )


def test_budget_just_inside_the_limits_passes():
    check([5], [10], 1.0)  # 50 input pixels, side 10
    check([7], [7], 1.1)  # ceil(7.7) = 8: 64 output pixels
    check([4, 4], [4, 5], 1.0)  # 36 pixels in all
    check([10], [8], 1.0, max_input_pixels=80)  # output 80 pixels: the limit itself


@pytest.mark.parametrize(
    "heights,widths,scale,message",
    [
        ([3, 0], [3, 3], 1.0, r"image 1: empty image \(3x0\)"),
        ([11], [1], 1.0, r"image 0: 1x11 pixels is over the input limit \(50 pixels, 10 per side\)"),
        ([2, 6], [2, 9], 1.0, r"image 1: 9x6 pixels is over the input limit"),
        ([7], [7], 1.3, r"image 0: 7x7 at scale 1.3 gives a 10x10 output, over the output limit \(80 pixels"),
        ([2], [6], 2.0, r"image 0: 6x2 at scale 2 gives a 12x4 output, over the output limit .* 10 per side"),
        ([5, 5, 5], [5, 5, 5], 1.0, r"batch: 75 input pixels in all is over the input limit of 50 per request"),
        ([6, 6, 6], [6, 6, 6], 1.0, r"batch: 108 output pixels in all is over the output limit of 80"),
    ],
)
def test_budget_refusals_name_the_limit_and_the_image(heights, widths, scale, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        check(heights, widths, scale, **({"max_input_pixels": 200} if "output pixels" in message else {}))


def test_empty_batch_is_refused_clearly(signatures):
    with pytest.raises(tf.errors.InvalidArgumentError, match="empty batch"):
        signatures["serving_default"](images=tf.zeros([0, 4, 4, 3], tf.uint8), scale=tf.constant(2.0))


def test_serving_default_refuses_an_oversized_output_at_once(signatures):
    with pytest.raises(tf.errors.InvalidArgumentError, match="2000x2000 at scale 8 gives a 16000x16000 output"):
        signatures["serving_default"](images=tf.zeros([1, 2000, 2000, 3], tf.uint8), scale=tf.constant(8.0))


def test_the_failing_image_of_an_encoded_batch_is_named(signatures):
    good = encode(random_rgb(6, 5))
    encoded = signatures["upscale_encoded"]
    cases = [
        ([good, good, b"not an image"], "image 2: not a PNG, JPEG or BMP image"),
        ([good, encode(random_rgb(6, 5), "GIF")], "image 1: not a PNG, JPEG or BMP image"),
        ([good, good[:-30], good], "image 1: could not be decoded"),  # truncated inside the data
        ([png_header(8192, 8193), good], "image 0: 8192x8193 pixels is over the input limit"),
        ([good, png_header(3000, 3000), png_header(3000, 3000)], "batch: .* output pixels in all"),
    ]
    for batch, message in cases:
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            encoded(image_bytes=tf.constant(batch), scale=tf.constant(2.0))
    assert encoded(image_bytes=tf.zeros([0], tf.string), scale=tf.constant(2.0))["png_bytes"].shape == [0]


def test_a_tiny_png_of_a_huge_image_is_refused_from_its_header(signatures):
    """The issue's attack: a ~47 KB 4000x4000 PNG at scale 8 (and 4200x4200, over the side limit).

    Refused before any decoding: the same file with its pixel data cut short, or
    with none, gets the same refusal, while a small image cut short is read and
    fails to decode. (benchmarks/refusal_costs.py times the refusal.)
    """
    encoded = signatures["upscale_encoded"]
    small = tf.io.encode_png(np.zeros((40, 40, 3), np.uint8)).numpy()
    with pytest.raises(tf.errors.InvalidArgumentError, match="image 0: could not be decoded"):
        encoded(image_bytes=tf.constant([small[:-30]]), scale=tf.constant(8.0))
    for side in (4000, 4200):
        png = tf.io.encode_png(np.zeros((side, side, 3), np.uint8)).numpy()
        assert len(png) < 100_000
        for data in (png, png[:-30], png_header(side, side)):
            with pytest.raises(tf.errors.InvalidArgumentError,
                               match=f"image 0: {side}x{side} at scale 8 gives a {8 * side}x{8 * side} output"):
                encoded(image_bytes=tf.constant([data]), scale=tf.constant(8.0))
