"""TFLite variants: each runs at two input sizes and stays within a stated PSNR of the Keras model."""

import numpy as np
import pytest
import skimage.data

import cmsc_tf
from cmsc_tf.deploy import tflite
from cmsc_tf.numerics.color import luminance
from cmsc_tf.numerics import degradation
from cmsc_tf.eval.metrics import psnr
from cmsc_tf.deploy.upscaler import Upscaler

# PSNR of each variant's output against the float Keras model's, on the
# luminance x 255 (the real VDSR on two photograph crops). Measured when
# written: float32 identical, float16 104 dB, dynamic_int8 61-64 dB, int8
# 53 dB; plain bicubic is 35-36 dB from the model, so each bound is far
# tighter than "the network did something".
MIN_PSNR_DB = {"float32": 90.0, "float16": 80.0, "dynamic_int8": 50.0, "int8": 45.0}


@pytest.fixture(scope="module")
def vdsr(shared_dir):
    return cmsc_tf.load_vdsr_weights(
        cmsc_tf.build_model("vdsr"), str(shared_dir / "reference_models" / "vdsr_291_x234.npz")
    )


@pytest.fixture(scope="module")
def inputs():
    """Two network inputs of different sizes, made as the evaluation protocol does (x2)."""
    y = luminance(skimage.data.astronaut()).astype(np.float64) / 255
    crops = [y[100:156, 180:228], y[300:338, 40:102]]  # 56 x 48 and 38 x 62
    return [degradation.degrade(c, 2).astype(np.float32)[..., None] for c in crops]


@pytest.mark.parametrize("variant", tflite.VARIANTS)
def test_variant_runs_at_two_sizes_close_to_keras(vdsr, inputs, variant):
    # Calibration patches from other photographs than the test crops.
    calibration = tflite.representative_patches([skimage.data.coffee(), skimage.data.chelsea()], count=8)
    network = tflite.TFLiteNetwork(tflite.convert(vdsr, variant, calibration if variant == "int8" else None))
    for x in inputs:
        expected = vdsr(x[None], training=False).numpy()[0]
        out = network(x)
        assert out.shape == x.shape and out.dtype == np.float32
        assert psnr(expected[..., 0] * 255, out[..., 0] * 255) >= MIN_PSNR_DB[variant]


def test_saved_tflite_carries_the_radius_and_tiles_exactly(tmp_path):
    model = cmsc_tf.build_model("cmsc", num_features=8, num_stages=1, num_modules=1)
    path = tflite.save(model, tmp_path / "tiny.tflite")
    metadata = tflite.read_metadata(path)
    assert metadata["receptive_radius"] == model.receptive_radius == 7  # 1 + (1 + 2 * 2) + 1
    assert metadata["tflite_variant"] == "float32"
    rgb = np.random.default_rng(0).integers(0, 256, (21, 17, 3), dtype=np.uint8)
    whole = Upscaler(path).upscale(rgb, 2.0)
    # uint8 results: float noise may flip a rounding, never more than one level.
    for other in (Upscaler(path, tile=9).upscale(rgb, 2.0), Upscaler(model).upscale(rgb, 2.0)):
        assert np.abs(other.astype(int) - whole).max() <= 1
