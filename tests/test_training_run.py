"""train_lib / training.main: a training step, NaN stop, kill -9 and resume, flags on disk."""

import csv
import json
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from tests import training_helpers as helpers
from training import pipeline, train_lib
from cmsc_tf.io import tfds_sets


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tfds")
    tfds_sets.load_arrays("skimage_train", tfds_dir=str(path))  # prepared once, then read-only
    return str(path)


def tiny_config(tfds_dir, model_dir, **changes):
    base = dict(
        model_overrides=dict(num_features=8, num_stages=2, num_modules=1),
        train_sets=("skimage_train",), val_set="", tfds_dir=tfds_dir,
        pipeline=pipeline.PipelineConfig(mode="random_crop", patch_size=21, batch_size=4,
                                         crops_per_image=4, shuffle_buffer=16),
        steps_per_epoch=3, epochs=1, model_dir=str(model_dir), export_dir="",
        tensorboard=False, verbose=0, checkpoint_every_steps=0)
    base.update(changes)
    return train_lib.TrainConfig(**base)


@pytest.mark.parametrize("optimizer, learning_rate", [("sgd", 0.01), ("adam", 1e-3)])
def test_one_training_step_reduces_the_loss_on_a_fixed_batch(tmp_path, tfds_dir, optimizer,
                                                             learning_rate):
    """The paper's SGD (momentum 0.9, wd 1e-4, clip 0.4; lr 0.01 here, see below) and Adam.

    With He-initialised reconstruction layers the untrained tiny model starts
    far off (loss ~1e3), and at the paper's lr 0.1 a single clipped step can
    overshoot; the property tested is that the gradient step descends.
    """
    config = tiny_config(tfds_dir, tmp_path, optimizer=optimizer, learning_rate=learning_rate)
    keras.utils.set_random_seed(0)
    table = train_lib.load_training_table(config)
    x, y = next(iter(pipeline.training_dataset(table, config.pipeline, 1)))
    model = train_lib.build_and_compile(config, steps_per_epoch=10)

    def loss():  # training-mode loss (batch statistics), as the step sees it
        return float(model.compute_loss(x, y, model(x, training=True), training=True))

    before = loss()
    model.train_on_batch(x, y)
    after = loss()
    assert np.isfinite(before) and after < before


@pytest.mark.parametrize("every_steps", [0, 1])
def test_nan_loss_stops_with_a_clear_error(tmp_path, tfds_dir, every_steps):
    """With a checkpoint after every batch too: the loss logged for a batch is
    the one before its update, so the weights can already be inf while it is
    finite; no such checkpoint may be written."""
    # lr 1e38 overflows the weights to inf in the first update, whose logged
    # loss (computed before the update) is still finite.
    config = tiny_config(tfds_dir, tmp_path, optimizer="sgd", learning_rate=1e38,
                         clip_value=0.0, weight_decay=0.0, steps_per_epoch=6, epochs=2,
                         checkpoint_every_steps=every_steps)
    with pytest.raises(train_lib.TrainingError, match=r"NaN/inf at epoch 1, batch \d"):
        train_lib.run(config)
    # Every checkpoint written holds finite weights only.
    for path in tmp_path.glob("ckpt-*"):
        model = train_lib.build_and_compile(config, steps_per_epoch=6)
        model.load_weights(str(path))
        assert all(np.isfinite(w).all() for w in model.get_weights()), path


def _poll_state(model_dir, process, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            state = json.loads((model_dir / "state.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            state = None
        if state and state["epoch"] >= 1 and state["step"] > 0:
            return state
        time.sleep(0.01)
    return None


def test_sigkill_mid_epoch_then_restart_continues_from_the_last_checkpoint(tmp_path, tfds_dir):
    model_dir = tmp_path / "run"
    epochs, steps = 3, 12
    flags = helpers.tiny_flags(model_dir, tfds_dir, epochs=epochs, steps_per_epoch=steps,
                               checkpoint_every_steps=3)
    process = subprocess.Popen([sys.executable, "-m", "training.main", *flags],
                               cwd=helpers.REPO_ROOT, env=helpers.python_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        seen = _poll_state(model_dir, process, timeout=180)
        assert seen is not None, "the run ended or stalled before a mid-epoch checkpoint"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    state = json.loads((model_dir / "state.json").read_text())
    assert (model_dir / state["weights"]).exists()
    assert 1 <= state["epoch"] < epochs and 0 < state["step"] < steps
    logged_before = [row["epoch"] for row in csv.DictReader(open(model_dir / "training_log.csv"))]
    assert logged_before == [str(e) for e in range(state["epoch"])]

    result = helpers.run_main(flags, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    global_step = state["epoch"] * steps + state["step"]
    assert (f"resuming from {state['weights']}: epoch {state['epoch']}, step {state['step']} "
            f"(global step {global_step})") in result.stderr
    summary = json.loads((model_dir / "summary.json").read_text())
    # The optimizer's step counter was restored and advanced once per remaining batch.
    assert summary["iterations"] == epochs * steps
    logged = [row["epoch"] for row in csv.DictReader(open(model_dir / "training_log.csv"))]
    assert logged == [str(e) for e in range(epochs)]  # every epoch once, in order
    final = json.loads((model_dir / "state.json").read_text())
    assert (final["epoch"], final["step"]) == (epochs, 0)
    # The resolved flags sit next to the checkpoints and reproduce the run's settings.
    written = (model_dir / "flags.txt").read_text().splitlines()
    assert f"--model_dir={model_dir}" in written and f"--epochs={epochs}" in written

    # The killed-and-resumed run trained exactly the batches of an uninterrupted one.
    straight_dir = tmp_path / "straight"
    straight_flags = helpers.tiny_flags(straight_dir, tfds_dir, epochs=epochs, steps_per_epoch=steps,
                                        checkpoint_every_steps=3)
    result = helpers.run_main(straight_flags, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = _h5_arrays(model_dir / final["weights"])
    straight = _h5_arrays(straight_dir / json.loads((straight_dir / "state.json").read_text())["weights"])
    assert resumed.keys() == straight.keys() and len(resumed) > 10
    for name in resumed:
        np.testing.assert_allclose(resumed[name], straight[name], rtol=1e-4, atol=1e-6, err_msg=name)


def _h5_arrays(path):
    import h5py

    arrays = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, item: arrays.__setitem__(name, item[()])
                     if isinstance(item, h5py.Dataset) else None)
    return arrays


def test_batch_norm_recalibration_makes_inference_match_training_mode(tfds_dir, tmp_path):
    """Calibrated on one batch, BN's moving statistics are that batch's statistics,
    so inference mode reproduces training mode on it; before, it did not."""
    from training.batch_norm import recalibrate_batch_norm

    config = tiny_config(tfds_dir, tmp_path)
    keras.utils.set_random_seed(1)
    table = train_lib.load_training_table(config)
    x, y = next(iter(pipeline.training_dataset(table, config.pipeline, 1)))
    model = train_lib.build_and_compile(config, steps_per_epoch=10)
    for _ in range(3):
        model.train_on_batch(x, y)

    def gap():
        train = keras.ops.convert_to_numpy(model(x, training=True)[-1])
        infer = keras.ops.convert_to_numpy(model(x, training=False)[-1])
        return np.abs(train - infer).max()

    assert gap() > 1e-2
    weights = [w.copy() for w in model.get_weights()]
    assert recalibrate_batch_norm(model, [(x, y)]) > 0
    assert gap() < 1e-4
    # Only BN moving statistics changed; trainable weights are untouched.
    trainable = {id(v) for v in model.trainable_variables}
    for before, variable in zip(weights, model.weights):
        if id(variable) in trainable:
            np.testing.assert_array_equal(before, keras.ops.convert_to_numpy(variable))


def test_loss_pixel_reduction_flag_reaches_the_compiled_loss(tmp_path, tfds_dir):
    """`mean` is Eq. 8's loss divided by the patch area (21 x 21 here)."""
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(2, 21, 21, 1)).astype(np.float32)
    y = rng.uniform(size=(2, 21, 21, 1)).astype(np.float32)
    losses = {}
    for reduction in ("sum", "mean"):
        keras.utils.set_random_seed(0)
        config = tiny_config(tfds_dir, tmp_path / reduction, loss_pixel_reduction=reduction)
        model = train_lib.build_and_compile(config, steps_per_epoch=10)
        losses[reduction] = float(model.compute_loss(x, y, model(x, training=False)))
    assert losses["mean"] == pytest.approx(losses["sum"] / (21 * 21), rel=1e-5)


def test_mixed_precision_run_trains_and_leaves_the_global_policy_alone(tmp_path, tfds_dir):
    config = tiny_config(tfds_dir, tmp_path, precision="mixed_bfloat16", checkpoint_every_steps=0)
    before = keras.mixed_precision.dtype_policy().name
    summary, model = train_lib.run(config)
    assert keras.mixed_precision.dtype_policy().name == before
    assert summary["iterations"] == config.steps_per_epoch
    # Computation in bfloat16, variables and outputs in float32 (outputs feed the loss).
    assert model.get_layer("feature_extraction").compute_dtype == "bfloat16"
    assert all(w.dtype == "float32" for w in model.trainable_weights)
    out = model(np.zeros((1, 9, 9, 1), np.float32))
    assert all(o.dtype == "float32" for o in out)
