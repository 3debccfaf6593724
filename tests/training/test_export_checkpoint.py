"""training.lib.checkpointing.export_checkpoint and training.export: a run's latest checkpoint exported without training further."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

import cmsc_tf
from tests import training_helpers as helpers
from training.lib import checkpointing
from training.lib.checkpointing import export_checkpoint
from training.lib.flag_values import parse_overrides


def make_run(model_dir):
    """A run folder as training.main leaves it: a trained step, state.json, config.json."""
    overrides = parse_overrides(helpers.TINY_OVERRIDES.split(","))
    model = cmsc_tf.build_model("cmsc", **overrides)
    model.compile(keras.optimizers.Adam(1e-2), **cmsc_tf.cascade_loss(model))
    rng = np.random.default_rng(0)
    x = rng.random((4, 21, 21, 1)).astype(np.float32)
    model.fit(x, x + 0.05 * rng.standard_normal(x.shape).astype(np.float32), epochs=1, verbose=0)
    checkpointing.save(model, model_dir, step=1, epoch=1)
    config = {"variant": "cmsc", "model_overrides": overrides, "export_prefix": ""}
    (model_dir / "config.json").write_text(json.dumps(config))
    return model


def test_export_checkpoint_writes_the_checkpointed_function(tmp_path):
    trained = make_run(tmp_path / "run")
    x = np.random.default_rng(1).random((1, 19, 27, 1)).astype(np.float32)
    expected = keras.ops.convert_to_numpy(trained(x, training=False)[-1])
    assert np.abs(expected - x).max() > 1e-4  # the trained step moved it away from bicubic

    written = export_checkpoint(tmp_path / "run", tmp_path / "out" / "tiny", ["keras", "tflite_float16"])
    assert set(written) == {"keras", "tflite_float16"}
    assert written["keras"] == tmp_path / "out" / "tiny.keras"
    loaded = keras.models.load_model(written["keras"], safe_mode=True)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x, training=False)[-1]), expected,
                               atol=1e-6)
    from cmsc_tf.deploy.tflite import TFLiteNetwork

    np.testing.assert_allclose(TFLiteNetwork(written["tflite_float16"])(x[0]), expected[0], atol=2e-3)
    assert not (tmp_path / "out" / "tiny").exists()  # no SavedModel asked for


def test_export_checkpoint_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint to export"):
        export_checkpoint(tmp_path)
    make_run(tmp_path / "run")
    with pytest.raises(ValueError, match="has no export_prefix"):
        export_checkpoint(tmp_path / "run")
    with pytest.raises(ValueError, match="unknown export formats"):
        export_checkpoint(tmp_path / "run", tmp_path / "x", ["onnx"])


def test_export_command_reports_a_missing_run_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "training.export", f"--model_dir={tmp_path}"],
                            cwd=helpers.REPO_ROOT, env=helpers.python_env(), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"training.export: error: {tmp_path}: no checkpoint to export (needs state.json and config.json)")


@pytest.mark.parametrize("flags, message", [
    ([], "give exactly one of --model_dir and --keras_model"),
    (["--model_dir=a", "--keras_model=b.keras"], "give exactly one of --model_dir and --keras_model"),
    (["--keras_model=b.keras"], "--keras_model needs --export_prefix"),
])
def test_export_command_usage_errors(flags, message):
    result = subprocess.run([sys.executable, "-m", "training.export", *flags], cwd=helpers.REPO_ROOT,
                            env=helpers.python_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.splitlines() == [f"training.export: error: {message}"]


def test_export_command_converts_a_keras_file(tmp_path):
    trained = make_run(tmp_path / "run")
    source = export_checkpoint(tmp_path / "run", tmp_path / "tiny", ["keras"])["keras"]
    result = subprocess.run([sys.executable, "-m", "training.export", f"--keras_model={source}",
                             f"--export_prefix={tmp_path}/out/tiny", "--formats=tflite_float16"],
                            cwd=helpers.REPO_ROOT, env=helpers.python_env(), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == f"tflite_float16: {tmp_path}/out/tiny_float16.tflite"
    from cmsc_tf.deploy.tflite import TFLiteNetwork

    x = np.random.default_rng(3).random((1, 17, 23, 1)).astype(np.float32)
    expected = keras.ops.convert_to_numpy(trained(x, training=False)[-1])
    np.testing.assert_allclose(TFLiteNetwork(tmp_path / "out" / "tiny_float16.tflite")(x[0]), expected[0],
                               atol=2e-3)
    missing = subprocess.run([sys.executable, "-m", "training.export", f"--keras_model={tmp_path}/none.keras",
                              f"--export_prefix={tmp_path}/x"], cwd=helpers.REPO_ROOT, env=helpers.python_env(),
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines()[-1] == (
        f"training.export: error: {tmp_path}/none.keras: no such .keras file (nor a preset: cmsc_compact, cmsc_full, vdsr)")
