"""Streamed tiling: each tile from its own input window, equal to the whole image, memory bounded by the tile."""

import tracemalloc

import numpy as np
import pytest

from cmsc_tf.deploy import resampling
from cmsc_tf.deploy.upscaler import Upscaler, bicubic_window
from cmsc_tf.io import pixel_budget
from cmsc_tf.numerics.imresize_np import imresize_np
from deploy_models import bicubic_cmsc, random_rgb, small_cmsc


def _unit(uint8):
    return uint8.astype(np.float32) / 255.0


@pytest.mark.parametrize("scale", [2.0, 3.0, 2.5, 1.3])
def test_a_window_of_the_bicubic_is_the_bicubic_of_the_image(scale):
    image = random_rgb(13, 11, seed=1)
    whole = imresize_np(image.astype(np.float64) / 255, scale)
    out_h, out_w = whole.shape[:2]
    # Corners, edges and the middle: the taps mirror at the border.
    for rows in (slice(0, 5), slice(3, out_h - 4), slice(out_h - 3, out_h), slice(0, out_h)):
        for cols in (slice(0, 1), slice(out_w // 2, out_w // 2 + 3), slice(out_w - 6, out_w)):
            window = bicubic_window(image, scale, (rows, cols), _unit)
            np.testing.assert_allclose(window, whole[rows, cols], rtol=0, atol=2e-6)


@pytest.fixture(scope="module")
def model():
    return small_cmsc()


def graph_pipeline(model, rgb, scale):
    """The untiled whole-image pipeline of the SavedModel graph (resampling.py): the reference."""
    y, cbcr = resampling.upsample_ycbcr(rgb, scale)
    return resampling.merge_ycbcr(model(y[None], training=False)[-1][0], cbcr).numpy()


def assert_nearly_equal(actual, expected):
    # float32 summation order may flip a rounding boundary, nothing more.
    difference = np.abs(actual.astype(int) - expected)
    assert actual.shape == expected.shape and difference.max() <= 1 and difference.mean() < 0.01


@pytest.mark.parametrize("scale,shape,tile", [(2.0, (23, 17), 9), (3.0, (13, 19), 16), (2.5, (21, 15), 11)])
def test_tiled_equals_untiled_and_the_graph_on_odd_sizes(model, scale, shape, tile):
    rgba = random_rgb(*shape, seed=int(scale * 10), channels=4)
    untiled = Upscaler(model).upscale(rgba, scale)
    tiled = Upscaler(model, tile=tile).upscale(rgba, scale)
    # Tiles of `tile` output pixels: seams everywhere, and every border tile.
    assert_nearly_equal(tiled, untiled)
    assert_nearly_equal(untiled[..., :3], graph_pipeline(model, rgba[..., :3], scale))
    gray = rgba[..., 0]
    assert_nearly_equal(Upscaler(model, tile=tile).upscale(gray, scale), Upscaler(model).upscale(gray, scale))


def test_network_crops_are_bounded_by_the_tile(model):
    crops = []
    upscaler = Upscaler(model, tile=10)
    network = upscaler._network
    upscaler._network = lambda y: crops.append(y.shape[:2]) or network(y)
    upscaler.upscale(random_rgb(17, 12, seed=2), 2.0)
    assert len(crops) == 4 * 3 and max(max(c) for c in crops) <= 10 + 2 * upscaler.halo


def test_peak_memory_is_the_uint8_output_plus_one_tile():
    upscaler, rgb = Upscaler(bicubic_cmsc(), tile=64), random_rgb(300, 260, seed=3)
    upscaler.upscale(random_rgb(20, 20), 2.0)  # warm-up: trace the network outside the measurement
    tracemalloc.start()
    try:
        out = upscaler.upscale(rgb, 2.0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # NumPy reports its buffers to tracemalloc. Beyond the uint8 output, one
    # tile's float planes and the per-axis bicubic taps: under a byte per
    # output sample here (and less as images grow), where the whole image's
    # float32 YCbCr planes alone would take 4.
    assert peak - out.nbytes < out.size


def test_the_output_budget_is_checked_before_anything_is_allocated(model):
    with pytest.raises(ValueError, match="pixel budget"):
        Upscaler(model, max_output_pixels=pixel_budget.MAX_OUTPUT_PIXELS + 1)
    upscaler = Upscaler(model, max_output_pixels=100)
    with pytest.raises(pixel_budget.PixelBudgetError, match="this Upscaler's limit"):
        upscaler.upscale(random_rgb(6, 6), 2.0)
    # 6000 x 6000 at x2 is 144 Mpx out, over the budget: refused at once.
    with pytest.raises(pixel_budget.PixelBudgetError, match="over the output limit"):
        Upscaler(model).upscale(np.zeros((6000, 6000), np.uint8), 2.0)
