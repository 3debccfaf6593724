"""PSNR, SSIM and IFC: hand-derived values, an independent SSIM, and properties."""

import math

import numpy as np
import pyrtools
import pytest
from skimage.metrics import structural_similarity

from cmsc_tf.eval import metrics
from cmsc_tf.numerics import degradation
from cmsc_tf.numerics.imresize_np import imresize_np


def _image(seed=0, shape=(96, 80)):
    """A smooth random image on the 0..255 scale (upsampled noise)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (shape[0] // 4, shape[1] // 4))
    return np.clip(imresize_np(coarse, output_shape=shape) + rng.normal(0, 3, shape), 0, 255)


def test_psnr_hand_values_and_identical_images():
    a = _image()
    assert metrics.psnr(a, a) == math.inf
    # A constant error of 1 gives MSE 1: 10 log10(255^2).
    assert metrics.psnr(a, a + 1) == pytest.approx(20 * math.log10(255), abs=1e-12)
    # Error 5 on a quarter of the pixels: MSE 25 / 4.
    b = a.copy()
    b[:48, :40] += 5
    assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 6.25), abs=1e-12)


def test_metrics_reject_mismatched_shapes():
    for fn in (metrics.psnr, metrics.ssim, metrics.ifc):
        with pytest.raises(ValueError, match="same shape"):
            fn(np.zeros((80, 80)), np.zeros((80, 81)))


def test_psnr_and_ssim_are_symmetric():
    a, b = _image(0), _image(1)
    assert metrics.psnr(a, b) == metrics.psnr(b, a)
    assert metrics.ssim(a, b) == pytest.approx(metrics.ssim(b, a), abs=1e-15)


def test_ssim_identical_is_one_and_constant_images_hand_value():
    a = _image()
    assert metrics.ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    # Constant images: no variance, so SSIM = (2 ab + C1) / (a^2 + b^2 + C1).
    c1 = (0.01 * 255) ** 2
    got = metrics.ssim(np.full((20, 20), 100.0), np.full((20, 20), 120.0))
    assert got == pytest.approx((2 * 100 * 120 + c1) / (100**2 + 120**2 + c1), abs=1e-12)


def test_ssim_matches_scikit_image_reference_settings():
    # skimage with Wang et al.'s settings (Gaussian 11x11, sigma 1.5,
    # population covariance) averages over the same valid region.
    a, b = _image(2), _image(3)
    expected = structural_similarity(
        a, b, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert metrics.ssim(a, b) == pytest.approx(expected, abs=1e-12)


def test_ifc_orders_distortions_and_vanishes_without_information():
    reference = _image(4, (144, 144))
    slightly = degradation.degrade(reference, 2)
    strongly = degradation.degrade(reference, 4)
    best, good, worse = (metrics.ifc(reference, d) for d in (reference, slightly, strongly))
    assert best > good > worse > 0
    # A constant image carries no information about the reference: g = 0 everywhere.
    assert metrics.ifc(reference, np.full_like(reference, 128.0)) == 0.0


def test_ifc_is_invariant_to_a_brightness_offset_of_both_images():
    # Oriented subbands have no DC component, so adding a constant to both
    # images changes IFC only by the pyramid's boundary handling (reflect1
    # mirrors without changing the constant): nothing.
    reference, distorted = _image(5, (120, 120)), _image(6, (120, 120))
    assert metrics.ifc(reference + 20, distorted + 20) == pytest.approx(metrics.ifc(reference, distorted), rel=1e-9)


def test_subbands_are_those_of_the_pyrtools_steerable_pyramid():
    image = _image(7, (100, 90))
    pyramid = pyrtools.pyramids.SteerablePyramidSpace(image, height=4, order=5, edge_type="reflect1")
    bands = metrics._oriented_bands(image)
    # protocol.md's numbering: 4 = coarsest level (3), orientation 3; 7 = its
    # orientation 0; ...; 25 = finest level (0), orientation 0.
    expected = {4: (3, 3), 7: (3, 0), 10: (2, 3), 13: (2, 0), 16: (1, 3), 19: (1, 0), 22: (0, 3), 25: (0, 0)}
    assert sorted(bands) == sorted(expected)
    for index, key in expected.items():
        np.testing.assert_array_equal(bands[index], pyramid.pyr_coeffs[key])


def test_small_images_get_clear_errors():
    with pytest.raises(ValueError, match="ssim: images must be at least 11x11"):
        metrics.ssim(np.zeros((10, 30)), np.zeros((10, 30)))
    with pytest.raises(ValueError, match="ifc: images must be at least"):
        metrics.ifc(np.zeros((40, 200)), np.zeros((40, 200)))
