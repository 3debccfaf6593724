"""The per-image protocol: shave, the luminance rule, one scoring path (modcrop: tests/numerics)."""

import math

import numpy as np
import pytest
from PIL import Image

from cmsc_tf.eval import protocol
from cmsc_tf.io.images import read_image
from cmsc_tf.numerics import color
from cmsc_tf.numerics.imresize_np import imresize_np


def test_shave_removes_exactly_the_border():
    image = np.arange(10 * 12).reshape(10, 12)
    shaved = protocol.shave(image, 3)
    np.testing.assert_array_equal(shaved, image[3:7, 3:9])
    with pytest.raises(ValueError, match="cannot shave"):
        protocol.shave(image, 5)


def test_errors_in_the_shaved_border_do_not_count():
    rng = np.random.default_rng(0)
    y = rng.uniform(size=(84, 96))
    scale = 3

    def ruin_border(x):
        sr = x.copy()
        sr[:scale] = sr[-scale:] = 0
        sr[:, :scale] = sr[:, -scale:] = 1
        return sr

    def exact_inside(x):
        # The true image inside, garbage on a border as wide as the shave.
        return ruin_border(y)

    scores, _, _ = protocol.score_image(y, scale, exact_inside, ("psnr", "ssim"))
    assert scores["psnr"] == math.inf
    assert scores["ssim"] == pytest.approx(1.0, abs=1e-12)

    # One more pixel of garbage and it counts.
    def one_pixel_too_far(x):
        sr = y.copy()
        sr[scale, scale + 5] += 0.5
        return sr

    scores, _, _ = protocol.score_image(y, scale, one_pixel_too_far, ("psnr",))
    assert math.isfinite(scores["psnr"])


def test_bicubic_is_the_identity_predictor_on_the_unrounded_input():
    # 0/1 blocks of 12 pixels: bicubic overshoots at their edges.
    y = np.kron(np.indices((4, 5)).sum(axis=0) % 2, np.ones((12, 12))).astype(np.float64)
    scores, sr, seconds = protocol.score_image(y, 4, protocol.bicubic_predictor, ("psnr",))
    expected = imresize_np(imresize_np(y, 1 / 4), 4)  # no rounding, no clipping
    np.testing.assert_array_equal(sr, expected)
    assert sr.min() < 0 or sr.max() > 1  # overshoot kept: nothing was clipped
    mse = np.mean((y[4:-4, 4:-4] * 255 - expected[4:-4, 4:-4] * 255) ** 2)
    assert scores["psnr"] == pytest.approx(10 * math.log10(255**2 / mse), abs=1e-12)
    assert seconds >= 0


def test_luminance_rule_from_files(tmp_path):
    rng = np.random.default_rng(2)
    gray = rng.integers(0, 256, (30, 31), dtype=np.uint8)
    rgb = rng.integers(0, 256, (30, 31, 3), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "gray.png")
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(np.concatenate([rgb, np.full((30, 31, 1), 7, np.uint8)], -1)).save(tmp_path / "rgba.png")
    # Grayscale: the gray value itself, modcropped, over 255.
    np.testing.assert_array_equal(protocol.hr_luminance(read_image(tmp_path / "gray.png"), 2), gray[:30, :30] / 255)
    expected_y = color.rgb2ycbcr(rgb)[:30, :30, 0] / 255
    for name in ("rgb.png", "rgba.png"):
        np.testing.assert_array_equal(protocol.hr_luminance(read_image(tmp_path / name), 2), expected_y)


def test_bad_inputs_get_clear_errors(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="broken.png: unsupported or unrecognised image format"):
        read_image(tmp_path / "broken.png")
    Image.fromarray(np.zeros((8, 8), np.float32)).save(tmp_path / "float.tif")
    with pytest.raises(ValueError, match="float.tif: floating-point images"):
        read_image(tmp_path / "float.tif")
    y = np.zeros((24, 24))
    with pytest.raises(ValueError, match="integer >= 2"):
        protocol.score_image(y, 2.5, protocol.bicubic_predictor)
    with pytest.raises(ValueError, match="unknown metrics"):
        protocol.score_image(y, 2, protocol.bicubic_predictor, ("psnr", "lpips"))
    with pytest.raises(ValueError, match="prediction has shape"):
        protocol.score_image(y, 2, lambda x: x[1:], ("psnr",))
