"""Shipped models by name (cmsc_tf.models.presets), resolved once in the loader."""

import numpy as np
import pytest

import cmsc_tf
from cmsc_tf.deploy import loader
from cmsc_tf.models import presets
from cmsc_tf.models.model import final_output
from tests.conftest import REPO_ROOT


def test_presets_resolve_to_the_checkout_first():
    assert presets.search_dirs()[0] == REPO_ROOT / "savedmodels"
    for name, preset in presets.PRESETS.items():
        assert preset["description"]
        for kind in ("saved_model", "keras", "tflite", "tflite_dynamic_int8"):
            if kind in preset:
                assert presets.preset_path(name, kind) == REPO_ROOT / "savedmodels" / preset[kind]
    assert loader.default_model_path() == REPO_ROOT / loader.DEFAULT_MODEL
    assert loader.available_model_path() == REPO_ROOT / loader.DEFAULT_MODEL


def test_unknown_presets_and_missing_files(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="unknown preset 'cmsc'"):
        presets.preset_path("cmsc")
    with pytest.raises(ValueError, match="has no 'tflite' file"):
        presets.preset_path("vdsr", "tflite")
    monkeypatch.setattr(presets, "search_dirs", lambda: [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(FileNotFoundError, match="preset 'vdsr'"):
        loader.load_network("vdsr")
    # A name that is not a preset stays a path.
    assert presets.resolve("savedmodels/vdsr/1") == "savedmodels/vdsr/1"


def test_a_preset_name_loads_the_same_model_as_its_path():
    x = np.random.default_rng(0).random((12, 10))
    by_name = loader.load_predictor("vdsr")(x)
    np.testing.assert_array_equal(by_name, loader.load_predictor(str(REPO_ROOT / "savedmodels/vdsr/1"))(x))


@pytest.mark.parametrize("name", list(presets.PRESETS))
def test_from_preset_returns_the_keras_model_of_every_preset(name):
    """The Keras model against the preset's float32 SavedModel signature (an independent graph)."""
    model = cmsc_tf.CMSC.from_preset(name)
    assert isinstance(model, cmsc_tf.CMSC)
    network, radius = loader.load_network(name, "float32")
    assert model.receptive_radius == radius == {"cmsc_compact": 20, "cmsc_full": 65, "vdsr": 20}[name]
    y = np.random.default_rng(1).random((1, 19, 23, 1)).astype(np.float32)
    expected = network(y[0])
    actual = np.asarray(final_output(model(y, training=False)))[0]
    np.testing.assert_allclose(actual, expected, rtol=0, atol=2e-5)
    assert np.abs(expected - y[0]).max() > 1e-3  # a trained network, not the identity


def test_from_preset_refuses_unknown_names_listing_the_presets():
    with pytest.raises(ValueError, match="unknown preset 'cmsc_tiny'; the presets are cmsc_compact, cmsc_full, vdsr"):
        cmsc_tf.CMSC.from_preset("cmsc_tiny")


def test_list_presets_names_each_preset_with_one_line():
    listing = cmsc_tf.list_presets()
    assert list(listing) == list(presets.PRESETS) and next(iter(listing)) == presets.DEFAULT_PRESET
    for name, description in listing.items():
        assert description == presets.PRESETS[name]["description"] and description and "\n" not in description
