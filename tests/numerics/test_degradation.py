"""The one degradation: modcrop, and imresize by 1/s then s, against imresize_np called directly."""

import numpy as np
import pytest

from cmsc_tf.numerics import degradation
from cmsc_tf.numerics.imresize_np import imresize_np


def test_modcrop_drops_trailing_rows_and_columns():
    image = np.arange(7 * 10 * 3).reshape(7, 10, 3)
    cropped = degradation.modcrop(image, 3)
    assert cropped.shape == (6, 9, 3)
    np.testing.assert_array_equal(cropped, image[:6, :9])
    assert degradation.modcrop(image, 2).shape == (6, 10, 3)
    assert degradation.modcrop(image[..., 0], 4).shape == (4, 8)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("channels", [None, 2, 3])
def test_degrade_is_imresize_down_then_up_unrounded(scale, channels):
    rng = np.random.default_rng(scale)
    shape = (12 * scale, 10 * scale) + (() if channels is None else (channels,))
    hr = rng.uniform(size=shape)
    # Written independently of degradation's own functions.
    lr = imresize_np(hr, 1 / scale)
    expected = imresize_np(lr, scale)
    np.testing.assert_array_equal(degradation.downscale(hr, scale), lr)
    np.testing.assert_array_equal(degradation.upscale(lr, scale), expected)
    x = degradation.degrade(hr, scale)
    np.testing.assert_array_equal(x, expected)
    assert x.shape == hr.shape and x.dtype == np.float64
    assert lr.shape[:2] == (12, 10)


def test_degrade_keeps_overshoot():
    # 0/1 blocks: bicubic overshoots at their edges, and nothing is clipped.
    hr = np.kron(np.indices((4, 5)).sum(axis=0) % 2, np.ones((12, 12))).astype(np.float64)
    x = degradation.degrade(hr, 4)
    assert x.min() < 0 or x.max() > 1
