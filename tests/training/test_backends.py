"""One trainer on every Keras backend: JAX <-> TensorFlow resume, JAX without TensorFlow."""

import json
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

from cmsc_tf.deploy import loader
from cmsc_tf.eval import protocol
from cmsc_tf.io import image_sets
from tests import training_helpers as helpers
from training.lib import checkpointing

pytest.importorskip("jax")  # in the test extra; optional for users

# A few short epochs of a tiny model with Adam, BN recalibration and a rate decay:
# every part of the state a resumed run must carry over.
STEPS_PER_EPOCH = 3


def _train(backend, model_dir, epochs):
    flags = helpers.tiny_flags(model_dir, epochs=epochs, steps_per_epoch=STEPS_PER_EPOCH, lr_decay_epochs=1,
                               lr_decay_factor=0.1, bn_recalibration_batches=2, checkpoint_every_steps=0)
    result = helpers.run_main(flags, timeout=600, backend=backend)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _start_from_epoch(source_dir, epoch, model_dir):
    """A run folder holding `source_dir`'s checkpoint of the end of `epoch` (what a run of
    `epoch` epochs leaves: training is a function of the seed and the step)."""
    model_dir.mkdir()
    (name,) = [p.name for p in source_dir.glob(f"ckpt-e{epoch:04d}-*.weights.h5")]
    shutil.copy(source_dir / name, model_dir / name)
    (model_dir / "state.json").write_text(json.dumps({"step": STEPS_PER_EPOCH * epoch, "weights": name}))


@pytest.mark.slow
def test_a_run_resumed_on_the_other_backend_equals_an_uninterrupted_one(tmp_path):
    """3 epochs of 3 steps on each backend; then, from each one's checkpoint
    of epoch 2, the last epoch on the other backend: the weights and the optimizer state
    (iterations, learning rate, Adam's moments) equal those of the uninterrupted run, to
    float rounding of two backends. Both ways: JAX -> TensorFlow and TensorFlow -> JAX."""
    straight = {backend: tmp_path / f"straight_{backend}" for backend in ("jax", "tensorflow")}
    for backend, model_dir in straight.items():
        _train(backend, model_dir, epochs=3)
    for first, second in (("jax", "tensorflow"), ("tensorflow", "jax")):
        switched = tmp_path / f"{first}_then_{second}"
        _start_from_epoch(straight[first], 2, switched)
        resumed = _train(second, switched, epochs=3)
        assert "at step 6" in resumed.stderr and "optimizer state not restored" not in resumed.stdout
        assert json.loads((switched / "config.json").read_text())["backend"] == second
        a, b = helpers.final_weights(switched), helpers.final_weights(straight[first])
        assert a.keys() == b.keys()
        optimizer_arrays = [name for name in a if name.startswith("optimizer")]
        assert len(optimizer_arrays) > 10  # iterations, learning rate, two moments per variable
        for name in a:
            np.testing.assert_allclose(a[name], b[name], rtol=2e-3, atol=2e-5, err_msg=f"{first}: {name}")
        scalars = {n: np.asarray(a[n]) for n in optimizer_arrays if a[n].shape == ()}
        assert sorted(int(v) for v in scalars.values() if v.dtype.kind in "iu") == [9]  # iterations
        # The learning rate decayed from epoch index 1 (--lr_decay_epochs=1), on both backends.
        assert [float(v) for v in scalars.values() if v.dtype.kind == "f"] == pytest.approx([1e-4])


# JAX's and TensorFlow's float32 outputs of the same weights agree to this (on 0..1).
OUTPUT_ATOL = 2e-5

NO_TENSORFLOW = helpers.BLOCK_TENSORFLOW + """
import runpy
model_dir, x_path, *flags = sys.argv[1:]
sys.argv = ["training.main", "--model_dir=" + model_dir, *flags]
try:
    runpy.run_module("training.main", run_name="__main__")
except SystemExit as exit:
    assert not exit.code, exit.code
import json, keras, numpy as np, cmsc_tf
from training.lib import checkpointing
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
                               val_max_images=1, val_scales="3", export_prefix=tmp_path / "exported",
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

    written = checkpointing.export_checkpoint(run, tmp_path / "out" / "tiny", ["keras", "saved_model"])
    loaded = keras.models.load_model(written["keras"], safe_mode=True)
    jax_output = np.load(tmp_path / "x.npy.out.npy")
    assert np.abs(jax_output - x).max() > 1e-4  # trained away from the bicubic start
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)[-1]), jax_output, atol=OUTPUT_ATOL)
    # The PSNR validated on JAX is the score training.evaluate's path gives the exported
    # weights here on TensorFlow (astronaut, the set's first image, at x3). Outputs that
    # differ by at most OUTPUT_ATOL move an RMSE e (on 0..1) by as much, so the PSNR,
    # -20 log10(e), by at most (20 / ln 10) OUTPUT_ATOL / e; plus the summary's rounding.
    (_, astronaut), *_ = image_sets.read_luminance_set("skimage_test")
    scores, _, _ = protocol.score_image(protocol.hr_luminance(astronaut, 3), 3,
                                        loader.load_predictor(str(written["keras"])), ("psnr",))
    rmse = 10 ** (-scores["psnr"] / 20)
    assert summary["psnr"]["3"] == pytest.approx(scores["psnr"], abs=8.686 * OUTPUT_ATOL / rmse + 5e-5)
    assert (written["saved_model"] / "saved_model.pb").is_file()
