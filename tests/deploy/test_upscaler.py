"""Upscaler: the colour pipeline against NumPy references, every input kind, tiling, self-ensemble, precision."""

import numpy as np
import PIL.Image
import pytest

from cmsc_tf.io import images
from cmsc_tf.numerics.imresize_np import imresize_np
from cmsc_tf.deploy.upscaler import Upscaler
from deploy_models import bicubic_cmsc, random_rgb, small_cmsc


def bicubic_uint8(image, scale):
    """MATLAB bicubic of a uint8 image in float64, rounded once (the independent truth)."""
    return np.floor(np.clip(imresize_np(image.astype(np.float64) / 255, scale), 0, 1) * 255 + 0.5)


def assert_close_uint8(actual, expected):
    assert actual.shape == expected.shape and actual.dtype == np.uint8
    difference = np.abs(actual.astype(int) - expected)
    assert difference.max() <= 1 and difference.mean() < 0.01


@pytest.fixture(scope="module")
def identity_upscaler():
    # Zero reconstruction: the network returns its input, so the Upscaler
    # must reduce to MATLAB bicubic of the RGB image (YCbCr is linear).
    return Upscaler(bicubic_cmsc())


@pytest.mark.parametrize("scale,shape", [(2.0, (22, 30)), (2.5, (28, 38)), (1.0, (11, 15))])
def test_identity_network_gives_matlab_bicubic_of_ceil_size(identity_upscaler, scale, shape):
    rgb = random_rgb(11, 15, seed=3)
    out = identity_upscaler.upscale(rgb, scale)
    assert out.shape == (*shape, 3)  # ceil(11 * 2.5) = 28, ceil(15 * 2.5) = 38
    assert_close_uint8(out, bicubic_uint8(rgb, scale))


def test_gray_alpha_pil_path_and_16_bit_inputs(identity_upscaler, tmp_path):
    rgba = random_rgb(9, 13, seed=4, channels=4)
    out = identity_upscaler.upscale(rgba, 2.0)
    assert_close_uint8(out, bicubic_uint8(rgba, 2.0))  # alpha: plain bicubic too
    gray = rgba[..., 0]
    assert_close_uint8(identity_upscaler.upscale(gray, 3.0), bicubic_uint8(gray, 3.0))
    wide = gray.astype(np.uint16) * 257  # 16-bit data scales back to the same 8 bits
    np.testing.assert_array_equal(identity_upscaler.upscale(wide, 3.0), identity_upscaler.upscale(gray, 3.0))
    pil = identity_upscaler.upscale(PIL.Image.fromarray(rgba[..., :3]), 2.0)
    assert isinstance(pil, PIL.Image.Image) and pil.size == (26, 18)
    np.testing.assert_array_equal(np.asarray(pil), identity_upscaler.upscale(rgba[..., :3], 2.0))
    PIL.Image.fromarray(rgba[..., :3]).save(tmp_path / "in.png")
    np.testing.assert_array_equal(identity_upscaler.upscale(tmp_path / "in.png", 2.0), np.asarray(pil))


def test_bad_arguments_are_refused(identity_upscaler):
    with pytest.raises(ValueError, match="between 1 and 8"):
        identity_upscaler.upscale(random_rgb(4, 4), 0.5)
    with pytest.raises(ValueError, match="over the output limit"):
        identity_upscaler.upscale(np.zeros((1, 5000), np.uint8), 8)
    with pytest.raises(images.ImageError, match="^image: expected a uint8, uint16 or bool array, got float32"):
        identity_upscaler.upscale(np.zeros((4, 4), np.float32), 2)
    with pytest.raises(FileNotFoundError, match="model not found"):
        Upscaler("no/such/model.keras")


@pytest.fixture(scope="module")
def model():
    return small_cmsc()


def test_tiled_upscale_equals_untiled(model):
    rgb = random_rgb(23, 17, seed=5)  # odd sizes; 2x gives 46 x 34, tiles of 15
    whole = Upscaler(model).upscale(rgb, 2.0)
    assert_close_uint8(Upscaler(model, tile=15).upscale(rgb, 2.0), whole)
    # The network must matter, or the comparison above proves nothing.
    assert np.abs(whole.astype(int) - bicubic_uint8(rgb, 2.0)).max() > 3


def test_self_ensemble_averages_the_network_over_eight_transforms(model):
    upscaler = Upscaler(model, self_ensemble=True, tile=12)
    y = np.random.default_rng(6).uniform(size=(19, 14, 1)).astype(np.float32)
    plain = Upscaler(model)
    transformed = [np.rot90(y, k) for k in range(4)] + [np.rot90(y[:, ::-1], k) for k in range(4)]
    outputs = [plain.network_y(np.ascontiguousarray(t)) for t in transformed]
    undone = [np.rot90(o, -k) for k, o in enumerate(outputs[:4])]
    undone += [np.rot90(o, -k)[:, ::-1] for k, o in enumerate(outputs[4:])]
    np.testing.assert_allclose(upscaler.network_y(y), np.mean(undone, axis=0), rtol=0, atol=2e-5)
    # The 8 terms really differ (a random network is not equivariant).
    assert np.abs(undone[0] - undone[5]).max() > 1e-3


def test_bfloat16_precision_stays_close_to_float32(model):
    y = np.random.default_rng(7).uniform(size=(24, 20, 1)).astype(np.float32)
    residual = Upscaler(model).network_y(y) - y
    residual_bf16 = Upscaler(model, precision="bfloat16").network_y(y) - y
    # bfloat16 keeps 8 bits of mantissa (relative rounding error 2^-9); over
    # the network's layers the errors add up to a few percent of the residual
    # the network predicts, never more. (This random network's residual is
    # large, so the test is strict; a trained one's is small.)
    error = np.abs(residual_bf16 - residual).max()
    assert 0 < error <= 0.05 * np.abs(residual).max()
    with pytest.raises(ValueError, match="precision must be one of"):
        Upscaler(model, precision="int4")


def test_keras_file_round_trip(model, tmp_path):
    path = tmp_path / "tiny.keras"
    model.save(path)
    rgb = random_rgb(10, 12, seed=8)
    loaded = Upscaler(path, tile=8)
    assert loaded.halo == model.receptive_radius
    assert_close_uint8(loaded.upscale(rgb, 1.5), Upscaler(model).upscale(rgb, 1.5))
