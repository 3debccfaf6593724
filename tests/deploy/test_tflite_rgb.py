"""The self-contained LiteRT model: uint8 RGB + scale in, uint8 RGB out, run with ai_edge_litert."""

import pathlib

import keras
import numpy as np
import pytest
import skimage.data

import cmsc_tf
from cmsc_tf.deploy import tflite, tflite_rgb

REPO = pathlib.Path(__file__).resolve().parents[2]
# Largest uint8 difference from the Keras Upscaler per variant (float32
# geometry of the bicubic in LiteRT vs float64 in the Upscaler).
MAX_LEVELS = {"float32": 1, "float16": 2}


@pytest.fixture(scope="module")
def compact():
    return keras.saving.load_model(REPO / "savedmodels" / "cmsc_compact.keras", compile=False, safe_mode=True)


@pytest.fixture(scope="module")
def photo():
    return skimage.data.astronaut()[60:124, 150:222]  # 64 x 72, face and background


@pytest.mark.parametrize("variant", sorted(MAX_LEVELS))
def test_rgb_model_matches_upscaler_on_a_photograph(compact, photo, tmp_path, variant):
    path = tflite_rgb.save_rgb(compact, tmp_path / f"compact_rgb_{variant}.tflite", variant)
    runner = tflite_rgb.TFLiteRGB(path)
    upscaler = cmsc_tf.Upscaler(compact)
    for scale in (2, 3):
        expected = upscaler.upscale(photo, scale)
        out = runner.upscale(photo, scale)
        assert out.dtype == np.uint8 and out.shape == expected.shape == (64 * scale, 72 * scale, 3)
        assert np.abs(out.astype(int) - expected).max() <= MAX_LEVELS[variant]
    # A second size through the same interpreter (inputs resized at run time).
    small = photo[:37, :41]
    assert np.abs(runner.upscale(small, 2).astype(int) - upscaler.upscale(small, 2)).max() <= MAX_LEVELS[variant]


def test_rgb_model_names_and_embedded_metadata(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    model = cmsc_tf.build_model("cmsc", num_features=8, num_stages=1, num_modules=1)
    path = tflite_rgb.save_rgb(model, tmp_path / "tiny_rgb.tflite", "float32")
    assert not (tmp_path / "tiny_rgb.tflite.json").exists()  # nothing on the side
    metadata = tflite.read_embedded_metadata(path)
    assert metadata["receptive_radius"] == model.receptive_radius == 7
    assert metadata["tflite_variant"] == "float32" and metadata["tflite_kind"] == "rgb"
    assert metadata["format"] == 1 and metadata["scales"] == [1.0, 8.0] and metadata["cmsc_tf_version"]
    signatures = Interpreter(model_path=str(path)).get_signature_list()
    assert signatures == {"serving_default": {"inputs": ["images", "scale"], "outputs": ["images"]}}
    # Only builtin ops: the pip LiteRT (no Flex delegate) runs it, at a non-integer scale too.
    out = tflite_rgb.TFLiteRGB(path).upscale(np.full((5, 7, 3), 128, np.uint8), 1.5)
    assert out.shape == (8, 11, 3)


def test_bare_network_output_is_final_and_metadata_embedded(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    model = cmsc_tf.build_model("cmsc", num_features=8, num_stages=1, num_modules=1)
    path = tflite.save(model, tmp_path / "tiny.tflite")
    assert Interpreter(model_path=str(path)).get_signature_list()["serving_default"]["outputs"] == ["final"]
    tflite.metadata_path(path).unlink()  # the embedded copy is enough
    assert tflite.read_metadata(path)["receptive_radius"] == 7
