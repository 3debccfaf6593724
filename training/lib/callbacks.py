"""The callbacks of a training run, on any Keras backend (trainer.make_callbacks orders them).

They share one `Progress`: the global step, the seconds trained and the epoch
at which the time budget decayed the rate, which the checkpoint saves in
state.json and a resumed run reads back.
"""

import dataclasses
import math
import os
import tempfile
import time

import keras
import numpy as np
from absl import logging

from cmsc_tf.eval import protocol
from cmsc_tf.models.model import final_output
from training.lib import checkpointing
from training.lib.batch_norm import recalibrate_batch_norm


@dataclasses.dataclass
class Progress:
    """Where a run is; everything here is saved with each checkpoint."""

    step: int = 0                       # batches trained since the run began
    patches_seen: int = None            # training pairs in those batches (None: not counted by
                                        # the checkpoint resumed from, which predates the count)
    seconds: float = 0.0                # training time, across resumes
    last_epoch_seconds: float = 0.0     # how long the latest epoch took (the budget's forecast)
    budget_decay_step: int = None       # the global step from which the time budget decayed the rate
    stopped_by_budget: bool = False

    def saved(self):
        return {"seconds": round(self.seconds, 3), "last_epoch_seconds": round(self.last_epoch_seconds, 3),
                "budget_decay_step": self.budget_decay_step, "patches_seen": self.patches_seen}


def finite_loss(logs):
    loss = (logs or {}).get("loss")
    return loss is None or math.isfinite(float(loss))


def mid_epoch_point(step, every_steps, steps_per_epoch):
    """Whether global step `step` is one of every `every_steps` (0: none) inside an epoch, not its end."""
    return bool(every_steps) and step % every_steps == 0 and step % steps_per_epoch != 0


def _sync_model_variables(model):
    # JAX keeps the training state outside the variables during an epoch; a
    # callback that reads weights mid-epoch asks for them (a public method of
    # Keras's JAX trainer).
    if hasattr(model, "jax_state_sync"):
        model.jax_state_sync()


class StepCounter(keras.callbacks.Callback):
    """Keeps `progress.step` at the global step (first in the list: the others read it), and
    `progress.patches_seen` at the pairs trained on (a phase may change the batch size).

    `resume_step`: the step this process started at, within its first epoch
    when a run resumes mid-epoch (that fit covers only the rest of the epoch).
    `batch_size`: the global batch of this process's steps.
    """

    def __init__(self, progress, steps_per_epoch, resume_step, batch_size):
        super().__init__()
        self.progress, self.steps_per_epoch, self.resume_step = progress, steps_per_epoch, resume_step
        self.batch_size = batch_size
        self._first = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._first = max(epoch * self.steps_per_epoch, self.resume_step)

    def on_train_batch_end(self, batch, logs=None):
        step = self._first + batch + 1
        if self.progress.patches_seen is not None:
            self.progress.patches_seen += (step - self.progress.step) * self.batch_size
        self.progress.step = step


class TimeBudget(keras.callbacks.Callback):
    """Counts the run's time; stops at an epoch end when the next epoch would pass `budget_s`.

    The time of an epoch includes what runs at its end before this callback
    (BN recalibration, validation). The forecast is the latest epoch's time,
    scaled to a whole epoch when it was the rest of an interrupted one. With
    `decay_fraction`, the step that ends the epoch passing that fraction of the
    budget is recorded in `progress.budget_decay_step` (the learning rate
    decays from the next epoch on). `clock`: seconds (a test passes a fake one).
    """

    def __init__(self, progress, steps_per_epoch, budget_s=0.0, decay_fraction=0.0,
                 clock=time.monotonic):
        super().__init__()
        self.progress, self.steps_per_epoch, self.budget_s = progress, steps_per_epoch, budget_s
        self.decay_fraction, self.clock = decay_fraction, clock
        self._last = None

    def on_epoch_begin(self, epoch, logs=None):
        self._last = self._epoch_start = self.clock()
        self._first_step = self.progress.step

    def on_train_batch_end(self, batch, logs=None):
        now = self.clock()
        self.progress.seconds += now - self._last
        self._last = now

    def on_epoch_end(self, epoch, logs=None):
        self.on_train_batch_end(None)
        progress = self.progress
        steps = max(1, progress.step - self._first_step)
        progress.last_epoch_seconds = (self._last - self._epoch_start) * self.steps_per_epoch / steps
        if not self.budget_s:
            return
        if (self.decay_fraction and progress.budget_decay_step is None
                and progress.seconds >= self.decay_fraction * self.budget_s):
            progress.budget_decay_step = progress.step
        if progress.seconds + progress.last_epoch_seconds > self.budget_s:
            logging.info("time budget of %.0f s reached after %.0f s", self.budget_s, progress.seconds)
            progress.stopped_by_budget = True
            self.model.stop_training = True


class CosineLearningRate(keras.callbacks.Callback):
    """Sets the rate before every step to `config.cosine_learning_rate` of the fraction of the
    run spent: of its time budget when it has one (the clock that stops it), else of its steps."""

    def __init__(self, config, progress, steps_per_epoch):
        super().__init__()
        self.config, self.progress = config, progress
        self.total_steps = config.epochs * steps_per_epoch

    def fraction_done(self):
        if self.config.time_budget_s:
            return self.progress.seconds / self.config.time_budget_s
        return self.progress.step / self.total_steps

    def on_train_batch_begin(self, batch, logs=None):
        self.model.optimizer.learning_rate = self.config.cosine_learning_rate(self.fraction_done())


class Reporter(keras.callbacks.Callback):
    """A callback that acts at the run's report points: every epoch end, and every
    `every_steps` global steps within an epoch (0: epoch ends only), while the loss is finite.

    Keras hands the same logs dict to every callback of a batch or an epoch,
    so a reporter earlier in the list (validation) adds what a later one (the
    writers) reads. Mid-epoch, on JAX, the variables are first synced from the
    training state (and what a reporter writes to them, BN statistics, is
    read back by the next step).
    """

    def __init__(self, progress, steps_per_epoch, every_steps=0):
        super().__init__()
        self.progress, self.steps_per_epoch, self.every_steps = progress, steps_per_epoch, every_steps
        self.epoch_first_step = progress.step

    def report(self, epoch, logs):
        raise NotImplementedError

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self.epoch_first_step = self.progress.step  # (a resumed run's first fit starts mid-epoch)

    def on_train_batch_end(self, batch, logs=None):
        step = self.progress.step
        if mid_epoch_point(step, self.every_steps, self.steps_per_epoch) and logs is not None and finite_loss(logs):
            _sync_model_variables(self.model)
            self.report(self._epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and finite_loss(logs):
            self.report(epoch, logs)


def swap_ema_weights(model):
    """Exchanges the model's trainable weights with its optimizer's moving averages (a second call swaps back).

    With `ema_momentum` the averages are what the run validates, checkpoints
    and exports, while training goes on from the raw weights: a checkpoint
    holds the averages in the model and the raw weights in the optimizer, so
    that anything reading a run folder's weights reads the averaged model,
    and a resumed run swaps once before its first step (trainer).
    Keras's SwapEMAWeights callback does the exchange (in place, on every
    backend and under tf.distribute); outside evaluate() its on_test_begin
    is the swap itself.
    """
    swapper = keras.callbacks.SwapEMAWeights()
    swapper.set_model(model)
    swapper.on_test_begin()


class SwapEMAWeights(Reporter):
    """Swaps the averaged weights in (before BN recalibration) or back out (after validation) at report points."""

    def report(self, epoch, logs):
        swap_ema_weights(self.model)


class BatchNormRecalibration(Reporter):
    """Runs recalibrate_batch_norm at every report point, before validation and checkpointing."""

    def __init__(self, batches, progress, steps_per_epoch, every_steps=0):
        """batches: a list of (x, y) batches, the same every time."""
        super().__init__(progress, steps_per_epoch, every_steps)
        self.batches = batches

    def report(self, epoch, logs):
        recalibrate_batch_norm(self.model, self.batches)


def predict_image(model, x):
    """The model's final prediction for one [H, W] float image, float64 [H, W] clipped to [0, 1]
    (the rule of `training.evaluate`, so validation PSNR and evaluation agree)."""
    final = final_output(model(x[None, :, :, None].astype(np.float32), training=False))
    return protocol.to_image(keras.ops.convert_to_numpy(final), np.shape(x))


class ValidationPSNR(Reporter):
    """Protocol PSNR (protocol.md) of the final output on a benchmark set, at every report point.

    Adds `val_psnr_x{s}`, `val_gain_x{s}` (over bicubic) per scale and
    `val_psnr` (their mean) to the logs, for the log writers after it.
    """

    def __init__(self, images, scales, progress, steps_per_epoch, every_steps=0):
        """images: list of (name, [H, W] uint8 protocol luminance)."""
        super().__init__(progress, steps_per_epoch, every_steps)
        self.images, self.scales = images, tuple(scales)
        self.bicubic = None
        self.last = None  # {scale: PSNR} of the latest evaluation

    def mean_psnr(self, scale, predictor):
        scores = [protocol.score_image(protocol.hr_luminance(y, scale), scale, predictor,
                                       ("psnr",))[0]["psnr"] for _, y in self.images]
        return float(np.mean(scores))

    def on_train_begin(self, logs=None):
        if self.bicubic is None:
            self.bicubic = {s: self.mean_psnr(s, protocol.bicubic_predictor) for s in self.scales}
            logging.info("validation: bicubic PSNR %s", _format(self.bicubic))

    def evaluate(self):
        self.on_train_begin()
        self.last = {s: self.mean_psnr(s, lambda x: predict_image(self.model, x)) for s in self.scales}
        return self.last

    def report(self, epoch, logs):
        start = time.perf_counter()
        psnr = self.evaluate()
        for scale, value in psnr.items():
            logs[f"val_psnr_x{scale}"] = value
            logs[f"val_gain_x{scale}"] = value - self.bicubic[scale]
        logs["val_psnr"] = float(np.mean(list(psnr.values())))
        logging.info("step %d (epoch %d) validation PSNR %s (bicubic %s), %.1f s", self.progress.step,
                     epoch + 1, _format(psnr), _format(self.bicubic), time.perf_counter() - start)


def _format(psnr_by_scale):
    return ", ".join(f"x{s} {v:.2f} dB" for s, v in psnr_by_scale.items())


class StopOnNaN(keras.callbacks.Callback):
    """Stops training at the first non-finite loss and remembers its step (0-based).

    trainer turns `stopped_at` into an error naming the step and the last
    good checkpoint (Keras's TerminateOnNaN only prints).
    """

    def __init__(self, progress):
        super().__init__()
        self.progress = progress
        self.stopped_at = None

    def on_train_batch_end(self, batch, logs=None):
        if self.stopped_at is None and not finite_loss(logs):
            self.stopped_at = self.progress.step - 1
            self.model.stop_training = True


class RunLogs(Reporter):
    """Writes each report point to the run's logs at its global step: a row of the CSV log
    (step, epoch, seconds and every value) and, given `summary_dir`, TensorBoard scalars
    (every value) and bicubic | output | HR image strips of `crops`.

    Losses are means over the steps since the previous report point of the
    epoch (Keras's logs hold running means since the epoch began), so with
    report points at epoch ends only a row holds epoch means. The learning
    rate is read from the optimizer (Keras logs it at epoch ends only).
    """

    def __init__(self, csv_path, progress, steps_per_epoch, every_steps=0, summary_dir=None, crops=()):
        """crops: list of (tag, x [h, w] float, y [h, w] float) in [0, 1] (TensorBoard images)."""
        super().__init__(progress, steps_per_epoch, every_steps)
        self.csv_path, self.summary_dir, self.crops = csv_path, summary_dir, crops
        self._writer = None
        self._reported = (0, {})  # (batches of this epoch, {loss: running mean}) at the last report

    def on_epoch_begin(self, epoch, logs=None):
        super().on_epoch_begin(epoch, logs)
        self._reported = (0, {})

    def window_means(self, logs):
        """{loss name: mean over the batches since the last report} from Keras's running means."""
        batches = self.progress.step - self.epoch_first_step
        before, means = self._reported
        window = {}
        for name, value in logs.items():
            if name == "loss" or name.endswith("_loss"):
                value = float(value)
                window[name] = (value * batches - means.get(name, 0.0) * before) / max(1, batches - before)
        self._reported = (batches, {n: float(logs[n]) for n in window})
        return window

    def report(self, epoch, logs):
        from training.lib import curves

        values = {k: float(v) for k, v in logs.items()}
        values.update(self.window_means(logs))
        values["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        values = dict(sorted(values.items()))
        step = self.progress.step
        curves.append_row(self.csv_path, {"step": step, "epoch": epoch + 1,
                                          "seconds": round(self.progress.seconds, 2), **values})
        if self.summary_dir:
            self._summaries(step, values)

    def _summaries(self, step, values):
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.summary_dir))
        with self._writer.as_default(step=step):
            for name, value in values.items():
                tf.summary.scalar(name, value)
            for tag, x, y in self.crops:
                strip = np.concatenate([x, predict_image(self.model, x), y], axis=1).clip(0, 1)
                tf.summary.image(tag, strip[None, :, :, None].astype(np.float32))
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class ResumableCheckpoint(keras.callbacks.Callback):
    """Saves the resumable state every `every_steps` steps and at every epoch end.

    Exact to the batch: the state records the global step, and the run
    restarts the data stream there (Keras's BackupAndRestore restarts an
    interrupted epoch from its first batch with mid-epoch weights).
    """

    def __init__(self, model_dir, every_steps, steps_per_epoch, progress, nan_guard, is_chief=True,
                 keep_epoch_checkpoints=True):
        super().__init__()
        self.model_dir, self.every_steps, self.steps_per_epoch = model_dir, every_steps, steps_per_epoch
        self.progress, self.nan_guard, self.is_chief = progress, nan_guard, is_chief
        self.keep_epoch_checkpoints = keep_epoch_checkpoints

    def _save(self, epoch=None):
        ema = getattr(self.model.optimizer, "use_ema", False)
        if ema:
            swap_ema_weights(self.model)  # a checkpoint holds the averaged model (swap_ema_weights)
        try:
            self._save_weights(epoch)
        finally:
            if ema:
                swap_ema_weights(self.model)

    def _save_weights(self, epoch):
        # A finite loss is that of the forward pass before the update: check the weights too.
        if not all(np.isfinite(w).all() for w in self.model.get_weights()):
            logging.warning("not checkpointing step %d: the weights are not finite", self.progress.step)
            return
        if self.is_chief:  # one writer; every worker holds the same weights
            checkpointing.save(self.model, self.model_dir, self.progress.step, epoch,
                               self.keep_epoch_checkpoints, **self.progress.saved())
        else:
            # Saving may run collective ops that every worker must join (the
            # MultiWorkerMirroredStrategy guide): the others save to a scratch folder.
            with tempfile.TemporaryDirectory() as scratch:
                self.model.save_weights(os.path.join(scratch, "worker.weights.h5"))

    def on_train_batch_end(self, batch, logs=None):
        step = self.progress.step
        if (mid_epoch_point(step, self.every_steps, self.steps_per_epoch)
                and finite_loss(logs) and self.nan_guard.stopped_at is None):
            _sync_model_variables(self.model)
            self._save()

    def on_epoch_end(self, epoch, logs=None):
        if finite_loss(logs) and self.nan_guard.stopped_at is None:
            self._save(epoch=epoch + 1)


# The test-only hook: "STEP,ANNOUNCE_FD,RESUME_FD" (tests/training_helpers.py starts such runs).
PAUSE_VARIABLE = "CMSC_TEST_PAUSE"


class PauseAtStep(keras.callbacks.Callback):
    """After global step `step` (its checkpoint included: last in the list) writes "STEP\n" to
    `announce_fd` and waits until `resume_fd` reaches its end.

    A test that signals or kills a run at a known point reads the line, sends
    its signal, then closes its end of `resume_fd`: it waits on the run's own
    announcement, and the run cannot finish before the signal arrives.
    """

    def __init__(self, progress, step, announce_fd, resume_fd):
        super().__init__()
        self.progress, self.step = progress, step
        self.announce_fd, self.resume_fd = announce_fd, resume_fd

    def on_train_batch_end(self, batch, logs=None):
        if self.announce_fd is None or self.progress.step < self.step:
            return
        os.write(self.announce_fd, f"{self.progress.step}\n".encode())
        os.close(self.announce_fd)
        self.announce_fd = None
        while os.read(self.resume_fd, 4096):  # a signal handler's exception (Ctrl-C) ends the wait too
            pass
        os.close(self.resume_fd)


def pause_from_environment(progress):
    """The PauseAtStep that $CMSC_TEST_PAUSE asks for, or None (outside tests)."""
    value = os.environ.get(PAUSE_VARIABLE)
    if not value:
        return None
    step, announce_fd, resume_fd = (int(part) for part in value.split(","))
    return PauseAtStep(progress, step, announce_fd, resume_fd)
