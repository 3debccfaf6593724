"""Shipped models by name (cmsc_tf.models.presets), resolved once in the loader."""

import numpy as np
import pytest

import cmsc_tf
from cmsc_tf.deploy import loader
from cmsc_tf.models import presets
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
    with pytest.raises(ValueError, match="has no 'keras' file"):
        presets.preset_path("vdsr", "keras")
    monkeypatch.setattr(presets, "search_dirs", lambda: [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(FileNotFoundError, match="preset 'vdsr'"):
        loader.load_network("vdsr")
    # A name that is not a preset stays a path.
    assert presets.resolve("savedmodels/vdsr/1") == "savedmodels/vdsr/1"


def test_a_preset_name_loads_the_same_model_as_its_path():
    x = np.random.default_rng(0).random((12, 10))
    by_name = loader.load_predictor("vdsr")(x)
    np.testing.assert_array_equal(by_name, loader.load_predictor(str(REPO_ROOT / "savedmodels/vdsr/1"))(x))


def test_from_preset_returns_the_keras_model():
    model = cmsc_tf.CMSC.from_preset("cmsc_compact")
    assert isinstance(model, cmsc_tf.CMSC)
    assert model.receptive_radius == 20
    with pytest.raises(ValueError, match="has no 'keras' file"):
        cmsc_tf.CMSC.from_preset("vdsr")
