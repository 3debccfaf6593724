"""The default CPU path: a preset runs its shipped dynamic-int8 LiteRT network; float32 is one option away."""

import json

import keras
import numpy as np
import pytest
import skimage.data

import cmsc_tf
from cmsc_tf.deploy import cli, loader, resampling, tflite, tiling
from cmsc_tf.deploy.upscaler import Upscaler
from cmsc_tf.eval.metrics import psnr
from cmsc_tf.models import presets
from deploy_models import bicubic_cmsc
from tests.conftest import REPO_ROOT

FAST_PRESETS = ("cmsc_compact", "cmsc_full")


def rgb_psnr(a, b):
    """PSNR in dB between two uint8 images of any shape."""
    return 10 * np.log10(255.0**2 / np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))


def photo(height, width, top=40, left=160):
    """A crop of a real photograph (skimage's astronaut), uint8 RGB."""
    return skimage.data.astronaut()[top : top + height, left : left + width]


@pytest.mark.parametrize("name", FAST_PRESETS)
def test_int8_files_are_shipped_listed_and_carry_the_radius(name):
    path = presets.preset_path(name, "tflite_dynamic_int8")
    assert path == REPO_ROOT / "savedmodels" / f"{name}_dynamic_int8.tflite"
    assert {path.name, path.name + ".json"} <= set(presets.package_files())
    metadata = json.loads((path.parent / (path.name + ".json")).read_text())
    keras_model = keras.saving.load_model(presets.preset_path(name, "keras"), compile=False, safe_mode=True)
    assert metadata["tflite_variant"] == "dynamic_int8"
    assert metadata["receptive_radius"] == keras_model.receptive_radius
    # int8 weights: about a quarter of the float32 weights' bytes.
    float32_bytes = sum(w.numpy().nbytes for w in keras_model.weights)
    assert 0.2 * float32_bytes < path.stat().st_size < 0.35 * float32_bytes


def test_default_precision_is_int8_for_the_cmsc_presets_only(tmp_path):
    for name in FAST_PRESETS:
        assert loader.default_precision(name) == "dynamic_int8"
    assert loader.default_precision("vdsr") == "float32"
    assert loader.default_precision(str(presets.preset_path("cmsc_compact"))) == "float32"  # a path keeps float32
    assert loader.default_precision(cmsc_tf.build_model("cmsc", num_features=8, num_stages=1, num_modules=1)) == "float32"


@pytest.mark.parametrize("name,size", [("cmsc_compact", (96, 120)), ("cmsc_full", (48, 64))])
def test_default_upscaler_runs_the_int8_file_close_to_float32(name, size):
    fast, exact = Upscaler(name), Upscaler(name, precision="float32")
    assert fast.precision == "dynamic_int8" and exact.precision == "float32"
    assert isinstance(fast._network, tflite.TFLiteNetwork)
    assert fast._network.num_threads == tflite.available_cores()
    # float32 is the SavedModel network: a signature, not LiteRT.
    assert hasattr(exact._network, "saved_model")
    rgb = photo(*size)
    a, b = fast.upscale(rgb, 2), exact.upscale(rgb, 2)
    assert a.shape == b.shape == (2 * size[0], 2 * size[1], 3)
    # uint8 outputs of int8 against float32 on a photograph.
    assert rgb_psnr(a, b) > 45
    # Far closer to float32 than plain bicubic is (the network's whole contribution).
    bicubic = Upscaler(bicubic_cmsc()).upscale(rgb, 2)
    assert rgb_psnr(a, b) > rgb_psnr(bicubic, b) + 10


def test_float32_network_is_the_keras_model():
    keras_model = keras.saving.load_model(presets.preset_path("cmsc_compact", "keras"), compile=False, safe_mode=True)
    y = photo(40, 56)[..., 1].astype(np.float32)[..., None] / 255
    expected = np.asarray(keras_model(y[None], training=False)[-1])[0]  # outputs: stage_1, stage_2, final
    np.testing.assert_allclose(Upscaler("cmsc_compact", precision="float32").network_y(y), expected, atol=1e-5)


def test_int8_from_a_keras_model_or_saved_model_is_converted_when_loaded():
    keras_model = keras.saving.load_model(presets.preset_path("cmsc_compact", "keras"), compile=False, safe_mode=True)
    y = photo(36, 44)[..., 0].astype(np.float32)[..., None] / 255
    shipped = Upscaler("cmsc_compact").network_y(y)
    for model in (keras_model, str(presets.preset_path("cmsc_compact"))):
        upscaler = Upscaler(model, precision="dynamic_int8")
        assert upscaler.halo == 20
        np.testing.assert_allclose(upscaler.network_y(y), shipped, atol=1e-5)
    # bfloat16 from a SavedModel: rebuilt from its stored config (this raised before).
    bf16 = Upscaler(str(presets.preset_path("cmsc_compact")), precision="bfloat16").network_y(y)
    assert psnr(bf16[..., 0] * 255, shipped[..., 0] * 255) > 35


def test_a_tflite_file_runs_as_converted():
    path = presets.preset_path("cmsc_compact", "tflite_dynamic_int8")
    for precision in (None, "float32", "dynamic_int8"):
        assert isinstance(Upscaler(path, precision=precision)._network, tflite.TFLiteNetwork)
    with pytest.raises(ValueError, match="runs at the precision it was converted with"):
        Upscaler(path, precision="bfloat16")


def test_default_tile_tiles_exactly_in_float32_and_within_45_db_in_int8():
    assert Upscaler("cmsc_compact").tile == tiling.DEFAULT_TILE == cli.DEFAULT_TILE
    assert Upscaler(cmsc_tf.build_model("vdsr"), halo=None).tile == tiling.DEFAULT_TILE  # VDSR has a radius
    # A luminance larger than one tile: 2 x 2 tiles of 512 with a 20-pixel halo.
    rgb = skimage.data.astronaut()
    y = np.concatenate([rgb[..., 1], rgb[:, :150, 1]], 1).astype(np.float32)[..., None] / 255  # 512 x 662
    y = np.concatenate([y, y[:40]], 0)  # 552 x 662
    for precision in ("float32", "dynamic_int8"):
        tiled = Upscaler("cmsc_compact", precision=precision)
        whole = Upscaler("cmsc_compact", precision=precision, tile=None)
        a, b = tiled.network_y(y), whole.network_y(y)
        if precision == "float32":
            np.testing.assert_allclose(a, b, rtol=0, atol=2e-5)
        else:
            # Activations are quantised per run, so each crop gets its own
            # ranges: 51 dB between tiled and untiled when measured.
            assert psnr(a[..., 0] * 255, b[..., 0] * 255) > 45


def test_cli_precision_option(tmp_path, capsys):
    import PIL.Image

    PIL.Image.fromarray(photo(20, 24)).save(tmp_path / "a.png")
    for out, extra in (("fast", []), ("exact", ["--precision", "float32"]), ("named", ["--model", "cmsc_compact"])):
        assert cli.run_cli([str(tmp_path / "a.png"), "--scale", "2", "--out", str(tmp_path / out)] + extra) == 0
    fast, exact, named = (np.asarray(PIL.Image.open(tmp_path / d / "a_x2.png")) for d in ("fast", "exact", "named"))
    expected = Upscaler("cmsc_compact", precision="float32").upscale(photo(20, 24), 2)
    assert np.array_equal(exact, expected)
    assert np.array_equal(fast, named)
    assert np.array_equal(fast, Upscaler("cmsc_compact").upscale(photo(20, 24), 2))
    assert rgb_psnr(fast, exact) > 45
    assert cli.run_cli([str(tmp_path / "a.png"), "--scale", "2", "--precision", "int4"]) == 2
    assert "invalid choice: 'int4'" in capsys.readouterr().err


@pytest.mark.parametrize("scale,tile", [(2, None), (3, 96), (2.5, 96)])
def test_numpy_steps_around_the_network_match_the_saved_model_graph(scale, tile):
    """The default path's NumPy bicubic and YCbCr against the exported graph's TensorFlow steps
    (cmsc_tf.deploy.resampling), around the same int8 network on a photograph, tiled or not."""
    upscaler = Upscaler("cmsc_compact", tile=tile)
    rgb = photo(90, 110)
    y, cbcr = resampling.upsample_ycbcr(rgb, scale)
    graph = resampling.merge_ycbcr(upscaler.network_y(y.numpy()), cbcr).numpy()
    numpy_path = upscaler.upscale(rgb, scale)
    assert numpy_path.shape == graph.shape == (*resampling.output_size(90, 110, scale), 3)
    assert np.abs(numpy_path.astype(int) - graph).max() <= 1
    # The network changed the image, so the agreement covers its output too.
    bicubic = resampling.merge_ycbcr(y, cbcr).numpy()
    assert np.abs(numpy_path.astype(int) - bicubic).max() > 10
