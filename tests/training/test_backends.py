"""One trainer on every Keras backend: JAX <-> TensorFlow resume, JAX without TensorFlow."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from tests import training_helpers as helpers
from training import checkpointing, export_lib

pytest.importorskip("jax")  # in the test extra; optional for users

# quick.flags, a few short epochs: the embedded default model and data, on a budget.
QUICK_FEW_STEPS = ["--flagfile=quick.flags", "--steps_per_epoch=3", "--val_set=", "--export_dir=",
                   "--tensorboard=false", "--bn_recalibration_batches=2", "--checkpoint_every_steps=0",
                   "--lr_decay_epochs=1"]


def _train(backend, model_dir, epochs):
    result = helpers.run_main([*QUICK_FEW_STEPS, f"--model_dir={model_dir}", f"--epochs={epochs}"],
                              timeout=600, backend=backend)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow
@pytest.mark.parametrize("first, second", [("jax", "tensorflow"), ("tensorflow", "jax")])
def test_a_run_resumed_on_the_other_backend_equals_an_uninterrupted_one(tmp_path, first, second):
    """quick.flags for 2 epochs of 3 steps on `first`, then 1 more on `second` from the same
    checkpoint: the weights and the optimizer state (iterations, learning rate, Adam's
    moments) equal those of 3 epochs on `first`, to float rounding of two backends."""
    switched, straight = tmp_path / "switched", tmp_path / "straight"
    _train(first, switched, epochs=2)
    resumed = _train(second, switched, epochs=3)
    assert "at step 6" in resumed.stderr and "optimizer state not restored" not in resumed.stdout
    _train(first, straight, epochs=3)
    config = json.loads((switched / "config.json").read_text())
    assert config["backend"] == second
    a, b = helpers.final_weights(switched), helpers.final_weights(straight)
    assert a.keys() == b.keys()
    optimizer_arrays = [name for name in a if name.startswith("optimizer")]
    assert len(optimizer_arrays) > 10  # iterations, learning rate, two moments per variable
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=2e-3, atol=2e-5, err_msg=name)
    iterations = next(name for name in optimizer_arrays if a[name].shape == ())
    assert int(a[iterations]) == 9
    # The learning rate decayed from epoch index 1 (--lr_decay_epochs=1), on both backends.
    rates = [float(np.asarray(a[n])) for n in optimizer_arrays if a[n].dtype.kind == "f" and a[n].shape == ()]
    assert rates == pytest.approx([1e-4])


NO_TENSORFLOW = helpers.BLOCK_TENSORFLOW + """
import runpy
model_dir, x_path, *flags = sys.argv[1:]
sys.argv = ["training.main", "--model_dir=" + model_dir, *flags]
try:
    runpy.run_module("training.main", run_name="__main__")
except SystemExit as exit:
    assert not exit.code, exit.code
import json, keras, numpy as np, cmsc_tf
from training import checkpointing
model, _ = checkpointing.build_from_run(model_dir, model_dir + "/" + checkpointing.read_state(model_dir)["weights"])
np.save(x_path + ".out.npy", keras.ops.convert_to_numpy(model(np.load(x_path), training=False)[-1]))
print(keras.backend.backend(), sorted(m for m in sys.modules if m.startswith("tensorflow")))
"""


def test_jax_backend_trains_without_tensorflow_and_tensorflow_exports_the_result(tmp_path):
    """Validation and the CSV log run without TensorFlow; the .keras export is written there,
    SavedModel and TFLite later by training.export (TensorFlow)."""
    x = np.random.default_rng(2).random((1, 23, 29, 1)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    flags = helpers.tiny_flags(tmp_path / "run", epochs=2, steps_per_epoch=3, val_set="skimage_test",
                               val_max_images=1, val_scales="3", export_dir=tmp_path / "exported",
                               tensorboard=True)
    result = subprocess.run(
        [sys.executable, "-c", NO_TENSORFLOW, str(tmp_path / "run"), str(tmp_path / "x.npy"),
         *[f for f in flags if not f.startswith("--model_dir")]], cwd=helpers.REPO_ROOT,
        env=dict(helpers.python_env("jax"), JAX_PLATFORMS="cpu"), capture_output=True, text=True,
        timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "jax []"  # no tensorflow module was loaded
    assert "TensorBoard needs tensorflow and tensorboard" in result.stderr
    run = tmp_path / "run"
    assert checkpointing.read_state(run)["step"] == 6
    summary = json.loads((run / "summary.json").read_text())
    assert summary["backend"] == "jax" and summary["keras"] == f"{tmp_path}/exported.keras"
    assert "python -m training.export" in summary["export_note"] and "saved_model" not in summary
    assert summary["psnr"]["3"] > 0  # validated on the JAX backend

    written = export_lib.export_checkpoint(run, tmp_path / "out" / "tiny", ["keras", "saved_model"])
    loaded = keras.models.load_model(written["keras"], safe_mode=True)
    jax_output = np.load(tmp_path / "x.npy.out.npy")
    assert np.abs(jax_output - x).max() > 1e-4  # trained away from the bicubic start
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)[-1]), jax_output, atol=2e-5)
    assert (written["saved_model"] / "saved_model.pb").is_file()
