"""trainer / training.main on the TensorFlow backend: steps, NaN, kill -9 and resume, budget, settings."""

import csv
import json
import signal
import time

import keras
import numpy as np
import pytest

from tests import training_helpers as helpers
from training.lib import checkpointing, trainer
from training.lib.config import TrainConfig


def tiny_config(model_dir, **changes):
    base = dict(
        model_overrides=dict(num_features=8, num_stages=2, num_modules=1),
        train_sets=("skimage_train",), val_set="", pipeline="random_crop", patch_size=21,
        batch_size=4, steps_per_epoch=3, epochs=1, optimizer="adam", learning_rate=1e-3,
        lr_decay_epochs=(), weight_decay=0.0, clip="none", model_dir=str(model_dir), export_prefix="",
        tensorboard=False, verbose=0, checkpoint_every_steps=0)
    base.update(changes)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def source():
    return trainer.load_training_source(tiny_config("unused"))


@pytest.mark.parametrize("optimizer, clip", [("sgd", "value"), ("sgd", "global_norm"), ("adam", "none")])
def test_one_training_step_reduces_the_loss_on_a_fixed_batch(tmp_path, source, optimizer, clip):
    """The paper's SGD (momentum 0.9, wd 1e-4, clip 0.4 either way; lr 0.01 here) and Adam.

    With He-initialised reconstruction layers the untrained tiny model starts
    far off (loss ~1e3); the property tested is that the gradient step descends.
    """
    config = tiny_config(tmp_path, optimizer=optimizer, clip=clip, clip_threshold=0.4,
                         learning_rate=0.01 if optimizer == "sgd" else 1e-3, weight_decay=1e-4)
    keras.utils.set_random_seed(0)
    x, y = source.batch(0)
    model = trainer.build_and_compile(config)

    def loss():  # training-mode loss (batch statistics), as the step sees it
        return float(model.compute_loss(x, y, model(x, training=True), training=True))

    before = loss()
    model.train_on_batch(x, y)
    assert np.isfinite(before) and loss() < before


@pytest.mark.parametrize("every_steps", [0, 1])
def test_nan_loss_stops_with_a_clear_error(tmp_path, every_steps):
    """With a checkpoint after every batch too: the loss logged for a batch is the
    one before its update, so the weights can already be inf while it is finite;
    no such checkpoint may be written."""
    # lr 1e38 overflows the weights to inf in the first update, whose logged
    # loss (computed before the update) is still finite.
    config = tiny_config(tmp_path, optimizer="sgd", learning_rate=1e38, steps_per_epoch=6, epochs=2,
                         checkpoint_every_steps=every_steps)
    with pytest.raises(trainer.TrainingError, match=r"NaN/inf at step \d+; training stopped\. "
                                                      r"No checkpoint was written"):
        trainer.run(config)
    for path in tmp_path.glob("ckpt-*"):  # every checkpoint written holds finite weights only
        model = trainer.build_and_compile(config)
        model.load_weights(str(path))
        assert all(np.isfinite(w).all() for w in model.get_weights()), path


def test_sigkill_mid_epoch_then_restart_equals_an_uninterrupted_run(tmp_path):
    model_dir = tmp_path / "run"
    epochs, steps = 3, 12
    flags = helpers.tiny_flags(model_dir, epochs=epochs, steps_per_epoch=steps, checkpoint_every_steps=3)
    with helpers.PausedRun(flags, 15, tmp_path / "output.txt") as run:  # epoch 2, after its step-15 checkpoint
        assert run.announced == "15", run.output.read_text()[-3000:]
        run.process.send_signal(signal.SIGKILL)
        run.process.wait(timeout=30)
    state = json.loads((model_dir / "state.json").read_text())
    assert (model_dir / state["weights"]).exists() and state["step"] == 15
    logged_before = [row["epoch"] for row in csv.DictReader(open(model_dir / "training_log.csv"))]
    assert logged_before == [str(e) for e in range(1, state["step"] // steps + 1)]

    result = helpers.run_main(flags, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"resuming from {state['weights']} at step {state['step']}" in result.stderr
    summary = json.loads((model_dir / "summary.json").read_text())
    assert summary["step"] == epochs * steps
    log = list(csv.DictReader(open(model_dir / "training_log.csv")))
    assert [row["epoch"] for row in log] == [str(e) for e in range(1, epochs + 1)]  # each epoch once
    assert [row["step"] for row in log] == [str(e * steps) for e in range(1, epochs + 1)]
    assert checkpointing.read_state(model_dir)["step"] == epochs * steps
    # The resolved flags sit next to the checkpoints and reproduce the run's settings.
    written = (model_dir / "flags.txt").read_text().splitlines()
    assert f"--model_dir={model_dir}" in written and f"--epochs={epochs}" in written

    # The killed-and-resumed run trained exactly the batches of an uninterrupted one:
    # the same weights and optimizer state (iterations, moments).
    straight_dir = tmp_path / "straight"
    result = helpers.run_main(helpers.tiny_flags(straight_dir, epochs=epochs, steps_per_epoch=steps,
                                                 checkpoint_every_steps=3), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    resumed, straight = helpers.final_weights(model_dir), helpers.final_weights(straight_dir)
    assert resumed.keys() == straight.keys() and any("optimizer" in k for k in resumed)
    for name in resumed:
        np.testing.assert_allclose(resumed[name], straight[name], rtol=1e-4, atol=1e-6, err_msg=name)


def test_batch_norm_recalibration_makes_inference_match_training_mode(tmp_path, source):
    """Calibrated on one batch, BN's moving statistics are that batch's statistics,
    so inference mode reproduces training mode on it; before, it did not."""
    from training.lib.batch_norm import recalibrate_batch_norm

    keras.utils.set_random_seed(1)
    x, y = source.batch(0)
    model = trainer.build_and_compile(tiny_config(tmp_path))
    for _ in range(3):
        model.train_on_batch(x, y)

    def gap():
        train = keras.ops.convert_to_numpy(model(x, training=True)[-1])
        infer = keras.ops.convert_to_numpy(model(x, training=False)[-1])
        return np.abs(train - infer).max()

    assert gap() > 1e-2
    weights = [w.copy() for w in model.get_weights()]
    # Every BN layer, nested ones included (docs/model.md): feature extraction 1, and per stage
    # (S = 2) the entry unit 1 + per MSC module (M = 1) two branches of conv-BN-act-conv-BN, 4.
    assert recalibrate_batch_norm(model, [(x, y)]) == 1 + 2 * (1 + 1 * 4)
    assert gap() < 1e-4
    trainable = {id(v) for v in model.trainable_variables}  # only BN statistics changed
    for before, variable in zip(weights, model.weights):
        if id(variable) in trainable:
            np.testing.assert_array_equal(before, keras.ops.convert_to_numpy(variable))


def test_loss_pixel_reduction_reaches_the_compiled_loss(tmp_path):
    """`mean` is Eq. 8's loss divided by the patch area (21 x 21 here)."""
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(2, 21, 21, 1)).astype(np.float32)
    y = rng.uniform(size=(2, 21, 21, 1)).astype(np.float32)
    losses = {}
    for reduction in ("sum", "mean"):
        keras.utils.set_random_seed(0)
        model = trainer.build_and_compile(tiny_config(tmp_path, loss_pixel_reduction=reduction))
        losses[reduction] = float(model.compute_loss(x, y, model(x, training=False)))
    assert losses["mean"] == pytest.approx(losses["sum"] / (21 * 21), rel=1e-5)


def test_scale_loss_weights_multiply_each_pairs_term_of_eq8(tmp_path):
    """Keras's loss with the source's sample weights equals Eq. 8 weighted per pair by hand."""
    config = tiny_config(tmp_path, scales=(2, 4), scale_loss_weights={2: 3.0, 4: 0.5})
    weighted = trainer.load_training_source(config)
    x, y, w = weighted.batch(0)
    keras.utils.set_random_seed(0)
    model = trainer.build_and_compile(config)
    outputs = model(x, training=False)
    terms = [0.5 * np.sum((keras.ops.convert_to_numpy(o) - y) ** 2, axis=(1, 2, 3)) for o in outputs]
    alpha = 2 / (2 + 2)  # S = 2
    per_pair = (1 - alpha) / 2 * (terms[0] + terms[1]) + alpha * terms[2]
    expected = np.mean(per_pair * w)
    got = float(model.compute_loss(x, y, outputs, sample_weight=w))
    assert got == pytest.approx(expected, rel=1e-4)
    assert sorted(set(w)) == [0.5, 3.0]


def test_mixed_precision_run_trains_and_leaves_the_global_policy_alone(tmp_path):
    config = tiny_config(tmp_path, dtype_policy="mixed_bfloat16")
    before = keras.mixed_precision.dtype_policy().name
    summary, model = trainer.run(config)
    assert keras.mixed_precision.dtype_policy().name == before
    assert summary["step"] == config.steps_per_epoch
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == config.steps_per_epoch
    # Computation in bfloat16, variables and outputs in float32 (outputs feed the loss).
    assert model.get_layer("feature_extraction").compute_dtype == "bfloat16"
    assert all(w.dtype == "float32" for w in model.trainable_weights)
    assert all(o.dtype == "float32" for o in model(np.zeros((1, 9, 9, 1), np.float32)))


class FakeClock:
    """Seconds that advance by `tick` at every reading: the run's time is its number of readings."""

    def __init__(self, tick):
        self.now, self.tick = 0.0, tick

    def __call__(self):
        self.now += self.tick
        return self.now


def test_time_budget_stops_at_an_epoch_end_records_the_decay_and_carries_over(tmp_path):
    """Every clock reading costs 1 s: per epoch of 3 steps the budget sees 4 s (3 batch
    ends + the epoch end after the epoch begin's reading). Budget 14 s: after 3 epochs
    (12 s) the next would end at 16 s > 14 s, so it stops at step 9; the decay fraction
    0.5 (7 s) is passed at epoch 2's end (8 s, step 6), so the rate decays from epoch index 2."""
    config = tiny_config(tmp_path, epochs=20, time_budget_s=14, decay_at_budget_fraction=0.5,
                         learning_rate=1e-3, lr_decay_factor=0.1)
    summary, model = trainer.run(config, clock=FakeClock(1.0))
    assert summary["step"] == 9 and summary["stopped_by_budget"]
    assert summary["seconds"] == 12 and summary["budget_decay_step"] == 6
    rates = [float(row["learning_rate"]) for row in csv.DictReader(open(tmp_path / "training_log.csv"))]
    assert rates == pytest.approx([1e-3, 1e-3, 1e-4])
    # A rerun with the budget spent trains nothing; a larger budget goes on with the decay kept.
    summary, _ = trainer.run(config, clock=FakeClock(1.0))
    assert summary["step"] == 9
    summary, _ = trainer.run(TrainConfig(**{**config.__dict__, "time_budget_s": 22}),
                               clock=FakeClock(1.0))
    assert summary["step"] == 15 and summary["seconds"] == 20 and summary["budget_decay_step"] == 6
    rates = [float(row["learning_rate"]) for row in csv.DictReader(open(tmp_path / "training_log.csv"))]
    assert rates == pytest.approx([1e-3, 1e-3, 1e-4, 1e-4, 1e-4])


def test_learning_rate_decays_at_the_listed_epochs_and_the_budget_epoch():
    config = TrainConfig(learning_rate=0.1, lr_decay_epochs=(10, 20), lr_decay_factor=0.1)
    assert [config.learning_rate_at(e, 100) for e in (0, 9, 10, 19, 20, 49)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.001, 0.001])
    # The budget's decay counts from a global step: the epochs that start at or after it.
    assert config.learning_rate_at(12, 100, budget_decay_step=1200) == pytest.approx(0.001)
    assert config.learning_rate_at(11, 100, budget_decay_step=1200) == pytest.approx(0.01)
    assert config.learning_rate_at(4, 250, budget_decay_step=1200) == pytest.approx(0.1)
    assert config.learning_rate_at(5, 250, budget_decay_step=1200) == pytest.approx(0.01)


def test_cosine_schedule_follows_the_time_budget_down_from_the_initial_rate(tmp_path):
    """Every clock reading costs 1 s (4 s per epoch of 3 steps, as above); budget 14 s. The rate
    of each step is set from the seconds spent before it: the log's rate at each epoch end is the
    one of the epoch's last step, 0.5 (1 + cos(pi t / 14)) lr0 at t = 2, 6 and 10 s."""
    config = tiny_config(tmp_path, epochs=20, time_budget_s=14, learning_rate=1e-3, lr_schedule="cosine")
    summary, _ = trainer.run(config, clock=FakeClock(1.0))
    assert summary["step"] == 9
    rates = [float(row["learning_rate"]) for row in csv.DictReader(open(tmp_path / "training_log.csv"))]
    assert rates == pytest.approx([1e-3 * 0.5 * (1 + np.cos(np.pi * t / 14)) for t in (2, 6, 10)])
    assert config.cosine_learning_rate(0) == 1e-3 and config.cosine_learning_rate(1) == 0.0
    assert config.cosine_learning_rate(0.5) == pytest.approx(5e-4)
    # Without a budget the fraction is of the run's steps.
    config = tiny_config(tmp_path / "steps", epochs=2, learning_rate=1e-3, lr_schedule="cosine")
    trainer.run(config)
    rates = [float(row["learning_rate"]) for row in csv.DictReader(open(tmp_path / "steps" / "training_log.csv"))]
    assert rates == pytest.approx([1e-3 * 0.5 * (1 + np.cos(np.pi * s / 6)) for s in (2, 5)])


def test_cpu_budget_clock_counts_the_process_cpu_seconds(tmp_path):
    """A budget in CPU seconds stops as a wall budget would, by the process's CPU time."""
    assert trainer.CLOCKS["cpu"] is time.process_time and trainer.CLOCKS["wall"] is time.monotonic
    config = tiny_config(tmp_path, epochs=1000, time_budget_s=1e-6, budget_clock="cpu")
    summary, _ = trainer.run(config)
    assert summary["stopped_by_budget"] and summary["step"] == config.steps_per_epoch


def test_l1_loss_and_validation_crops_reach_the_run(tmp_path):
    config = tiny_config(tmp_path, loss_norm="l1", val_set="skimage_test", val_crop_size=40,
                         val_scales=(2,), val_max_images=2)
    images = trainer.load_validation_images(config)
    full = dict(trainer.image_sets.read_luminance_set("skimage_test"))
    assert [y.shape for _, y in images] == [(40, 40), (40, 40)]
    for name, y in images:  # the centre window of the whole image
        top, left = (full[name].shape[0] - 40) // 2, (full[name].shape[1] - 40) // 2
        np.testing.assert_array_equal(y, full[name][top:top + 40, left:left + 40])
    model = trainer.build_and_compile(config)
    assert all(type(loss).__name__ == "AbsoluteError" for loss in model.loss)
    small = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(trainer.centre_crop(small, 40), small)
    np.testing.assert_array_equal(trainer.centre_crop(small, 2), small[0:2, 1:3])


def test_init_from_starts_a_new_phase_from_a_run_and_leaves_the_source_untouched(tmp_path):
    """A second run in a new folder goes on from the first run's step, weights and Adam moments;
    the first folder's files keep their bytes."""
    first = tiny_config(tmp_path / "first", epochs=2)
    _, trained = trainer.run(first)
    before = {p.name: p.read_bytes() for p in (tmp_path / "first").iterdir() if p.is_file()}
    second = tiny_config(tmp_path / "second", epochs=2, init_from=str(tmp_path / "first"))
    summary, _ = trainer.run(second)
    assert summary["step"] == 2 * first.steps_per_epoch  # nothing left to train: it starts where the first stopped
    # Its third epoch at half the batch: the pairs trained on count each step at its own batch size.
    continued = tiny_config(tmp_path / "second", epochs=3, init_from=str(tmp_path / "first"), batch_size=2)
    summary, model = trainer.run(continued)
    assert summary["step"] == 3 * first.steps_per_epoch
    assert summary["patches_seen"] == 2 * first.steps_per_epoch * 4 + first.steps_per_epoch * 2
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 3 * first.steps_per_epoch
    assert {p.name: p.read_bytes() for p in (tmp_path / "first").iterdir() if p.is_file()} == before
    # The new folder's first checkpoint is the source's, optimizer included (Adam's iteration count
    # above went on from it); the weights restored from it are the first run's.
    seeded = trainer.build_and_compile(second)
    checkpointing.seed_run(tmp_path / "fourth", tmp_path / "first", keep_optimizer=True)
    assert checkpointing.restore(seeded, tmp_path / "fourth")["step"] == 2 * first.steps_per_epoch
    for a, b in zip(seeded.weights, trained.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    assert int(keras.ops.convert_to_numpy(seeded.optimizer.iterations)) == 2 * first.steps_per_epoch
    with pytest.raises(ValueError, match="neither a .keras file, a .weights.h5 checkpoint nor a run folder"):
        trainer.run(tiny_config(tmp_path / "third", init_from=str(tmp_path / "empty")))


@pytest.mark.parametrize("changes, message", [
    ({"learning_rate": float("inf")}, "learning_rate must be a finite number > 0, got inf"),
    ({"pipeline": "random_crop", "steps_per_epoch": 0}, "random_crop pipeline needs steps_per_epoch"),
    ({"decay_at_budget_fraction": 0.5}, "decay_at_budget_fraction needs time_budget_s"),
    ({"scales": (2, 3), "scale_loss_weights": {2: 1.0}}, r"no weight for scale\(s\) \[3\]"),
    ({"clip": "elementwise"}, "clip must be one of"),
    ({"strategy": "parameter_server"}, "strategy must be one of"),
    ({"loss_norm": "huber"}, "loss_norm must be one of"),
    ({"budget_clock": "gpu"}, "budget_clock must be one of"),
    ({"lr_schedule": "cosine", "lr_decay_epochs": (2,)}, "lr_schedule=cosine decays the rate by itself"),
    ({"val_crop_size": 8}, "val_crop_size must be 0"),
    ({"train_sets": ("t91",), "data_dir": "/nonexistent/datasets"}, "/nonexistent/datasets"),
])
def test_bad_settings_are_refused_before_any_training(tmp_path, changes, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        trainer.run(tiny_config(tmp_path / "run", **changes))
    assert not (tmp_path / "run" / "state.json").exists()


def test_a_model_dir_that_cannot_be_created_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    result = helpers.run_main(helpers.tiny_flags(tmp_path / "file" / "run"), timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("training.main: error: --model_dir=")
    assert "Traceback" not in result.stderr


def _model_arrays(model_dir, config):
    model = trainer.build_and_compile(config)
    checkpointing.restore(model, model_dir)
    return model, [keras.ops.convert_to_numpy(w) for w in model.weights]


def test_a_run_with_unit_scale_weights_equals_the_unweighted_run(tmp_path):
    runs = {"plain": {}, "unit": {2: 1.0, 3: 1.0, 4: 1.0}, "x2": {2: 4.0, 3: 1.0, 4: 1.0}}
    weights = {}
    for name, scale_weights in runs.items():
        config = tiny_config(tmp_path / name, scale_loss_weights=scale_weights)
        trainer.run(config)
        weights[name] = _model_arrays(tmp_path / name, config)[1]
    for a, b in zip(weights["plain"], weights["unit"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert any(not np.allclose(a, b, rtol=1e-4, atol=1e-5) for a, b in zip(weights["plain"], weights["x2"]))
    config = json.loads((tmp_path / "x2" / "config.json").read_text())
    assert config["scale_loss_weights"] == {"2": 4.0, "3": 1.0, "4": 1.0}


def test_bn_recalibration_runs_after_each_epoch_on_the_fixed_calibration_batches(tmp_path, source):
    """The same run with and without recalibration: the trained weights agree, and the BN
    statistics are those of recalibrate_batch_norm on the source's calibration batches."""
    from training.lib.batch_norm import recalibrate_batch_norm
    from training.lib.data.source import CALIBRATION_STEP

    trainer.run(tiny_config(tmp_path / "plain"))
    trainer.run(tiny_config(tmp_path / "recalibrated", bn_recalibration_batches=3))
    model, plain = _model_arrays(tmp_path / "plain", tiny_config(tmp_path / "plain"))
    recalibrate_batch_norm(model, [source.batch(CALIBRATION_STEP + i)[:2] for i in range(3)])
    _, recalibrated = _model_arrays(tmp_path / "recalibrated", tiny_config(tmp_path / "recalibrated"))
    moving = [i for i, v in enumerate(model.weights) if "moving" in v.path]
    assert moving
    for i, (expected, a, b) in enumerate(zip(model.weights, plain, recalibrated)):
        np.testing.assert_allclose(b, keras.ops.convert_to_numpy(expected), rtol=1e-5, atol=1e-6)
        if i in moving:
            assert not np.allclose(a, b)  # Keras's moving averages were replaced


def test_steps_per_execution_must_divide_the_epoch_and_the_checkpoint_interval(tmp_path):
    with pytest.raises(ValueError, match=r"steps_per_epoch \(3\) must be a multiple of steps_per_execution \(2\)"):
        trainer.run(tiny_config(tmp_path / "a", steps_per_execution=2))
    with pytest.raises(ValueError, match="checkpoint_every_steps must be a multiple of steps_per_execution"):
        trainer.run(tiny_config(tmp_path / "b", steps_per_execution=2, steps_per_epoch=4,
                                  checkpoint_every_steps=3))
    summary, _ = trainer.run(tiny_config(tmp_path / "c", steps_per_execution=2, steps_per_epoch=4,
                                           checkpoint_every_steps=2, epochs=2))
    assert summary["step"] == 8
    log = list(csv.DictReader(open(tmp_path / "c" / "training_log.csv")))
    assert [row["step"] for row in log] == ["4", "8"]


def test_a_log_with_other_columns_is_rewritten_with_every_column(tmp_path):
    """A legacy log (another column order, no step) resumed by this trainer stays aligned."""
    from training.lib import curves

    path = tmp_path / "training_log.csv"
    path.write_text("epoch,loss\n0,2.5\n")
    curves.append_row(path, {"step": 10, "epoch": 2, "loss": 1.5, "val_psnr": 30.0})
    curves.append_row(path, {"step": 20, "epoch": 3, "loss": 1.0, "val_psnr": 31.0})
    rows = list(csv.DictReader(open(path)))
    assert list(rows[0]) == ["epoch", "loss", "step", "val_psnr"]
    assert [(r["epoch"], r["loss"], r["step"], r["val_psnr"]) for r in rows] == [
        ("0", "2.5", "", ""), ("2", "1.5", "10", "30.0"), ("3", "1.0", "20", "31.0")]


def test_the_budget_forecasts_a_whole_epoch_from_the_rest_of_an_interrupted_one():
    """Resumed at step 10 of epochs of 4 steps: the fit covers steps 11 and 12 only. With a
    clock that advances 1 s a reading, those 2 steps take 3 s (epoch begin to epoch end),
    so the next epoch of 4 steps is forecast at 6 s, not 3 s."""
    from training.lib.callbacks import Progress, TimeBudget

    progress = Progress(step=10)
    budget = TimeBudget(progress, steps_per_epoch=4, budget_s=100, clock=FakeClock(1.0))
    budget.set_model(keras.Sequential())
    budget.on_epoch_begin(2)
    for step in (11, 12):
        progress.step = step
        budget.on_train_batch_end(step)
    budget.on_epoch_end(2)
    assert progress.seconds == 3 and progress.last_epoch_seconds == 6


def _trainable_arrays(model_dir, config):
    model = trainer.build_and_compile(config)
    checkpointing.restore(model, model_dir)
    return [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]


def test_ema_checkpoints_hold_the_average_of_the_raw_weights(tmp_path):
    """Keras's average is w_1 after the first update, then m * avg + (1 - m) * w_t: with m = 0.5 over two
    steps, the checkpoint's model is (w_1 + w_2) / 2, where w_t are the weights of the same run without
    EMA (the average does not change training); and a run resumed after step 1 equals the straight one."""
    raw = {}
    for steps in (1, 2):
        config = tiny_config(tmp_path / f"raw{steps}", steps_per_epoch=steps, bn_recalibration_batches=0)
        trainer.run(config)
        raw[steps] = _trainable_arrays(tmp_path / f"raw{steps}", config)
    ema = tiny_config(tmp_path / "ema", steps_per_epoch=2, ema_momentum=0.5, bn_recalibration_batches=0)
    trainer.run(ema)
    averaged = _trainable_arrays(tmp_path / "ema", ema)
    for a, w1, w2 in zip(averaged, raw[1], raw[2]):
        np.testing.assert_allclose(a, (w1 + w2) / 2, rtol=1e-5, atol=1e-7)
    assert any(not np.allclose(w1, w2) for w1, w2 in zip(raw[1], raw[2]))  # so the average says something

    # Resumed after two steps (the checkpoint: the average in the model, the raw weights in the
    # optimizer; after one step both are w_1), a run trains on from the raw weights: a third step
    # ends where a straight three-step run does. One-step epochs: the batches depend on the step alone.
    def ema_run(name, epochs):
        config = tiny_config(tmp_path / name, steps_per_epoch=1, epochs=epochs, ema_momentum=0.5,
                             bn_recalibration_batches=0)
        trainer.run(config)
        return config

    ema_run("resumed", 2)
    resumed = ema_run("resumed", 3)
    straight = ema_run("straight", 3)
    assert checkpointing.read_state(tmp_path / "resumed")["step"] == 3
    for a, b in zip(_trainable_arrays(tmp_path / "resumed", resumed), _trainable_arrays(tmp_path / "straight", straight)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
