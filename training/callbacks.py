"""Keras callbacks of a training run (see train_lib.make_callbacks for their order)."""

import math
import time

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from cmsc_tf.deploy import loader
from cmsc_tf.eval import protocol
from training import checkpointing
from training.batch_norm import recalibrate_batch_norm


def predict_image(model, x):
    """The model's final prediction for one [H, W] float image, float64 [H, W].

    Clipped to [0, 1] by the same rule as `training.evaluate`
    (`cmsc_tf.deploy.loader`), so validation PSNR and evaluation agree.
    """
    sr = loader.final_output(model(x[None, :, :, None].astype(np.float32), training=False))
    return loader.to_image(keras.ops.convert_to_numpy(sr), np.shape(x))


class BatchNormRecalibration(keras.callbacks.Callback):
    """Runs recalibrate_batch_norm at every epoch end, before validation and checkpointing."""

    def __init__(self, make_batches):
        """make_batches: () -> iterable of (x, y) batches, the same every time."""
        super().__init__()
        self.make_batches = make_batches

    def on_epoch_end(self, epoch, logs=None):
        if _finite_loss(logs):
            recalibrate_batch_norm(self.model, self.make_batches())


class ResumableCheckpoint(keras.callbacks.Callback):
    """Saves the resumable training state every N batches and at every epoch end.

    The equivalent of BackupAndRestore, but exact to the batch: the state
    records (epoch, batches done in it), and train_lib restarts the data
    stream at that batch (BackupAndRestore restarts the interrupted epoch from
    its first batch with mid-epoch weights, repeating batches).

    `step_offset` is the number of batches of the first epoch that an earlier,
    interrupted process already trained (fit counts from 0 again).
    """

    def __init__(self, model_dir, every_steps, steps_per_epoch, is_chief=True,
                 keep_epoch_checkpoints=True):
        super().__init__()
        self.model_dir = model_dir
        self.every_steps = every_steps
        self.steps_per_epoch = steps_per_epoch
        self.is_chief = is_chief
        self.keep_epoch_checkpoints = keep_epoch_checkpoints
        self.step_offset = 0
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def _save(self, epoch, step):
        # The logged loss is that of the forward pass before the update, so
        # finite loss does not prove finite weights: check the weights too.
        if not _finite_weights(self.model):
            logging.warning("not checkpointing epoch %d step %d: the weights are not finite",
                            epoch, step)
            return
        if self.is_chief:  # one writer; every worker holds the same weights
            checkpointing.save(self.model, self.model_dir, epoch, step,
                               keep_epoch_checkpoints=self.keep_epoch_checkpoints,
                               steps_per_epoch=self.steps_per_epoch)

    def on_train_batch_end(self, batch, logs=None):
        step = self.step_offset + batch + 1
        if not _finite_loss(logs) or step >= self.steps_per_epoch:
            return  # never save NaN weights; the epoch end saves the last batch
        if self.every_steps and step % self.every_steps == 0:
            self._save(self._epoch, step)

    def on_epoch_end(self, epoch, logs=None):
        self.step_offset = 0
        if _finite_loss(logs) and not self.model.stop_training:
            self._save(epoch + 1, 0)


def _finite_weights(model):
    return all(np.isfinite(w).all() for w in model.get_weights())


def _finite_loss(logs):
    loss = (logs or {}).get("loss")
    return loss is None or math.isfinite(float(loss))


class StopOnNaN(keras.callbacks.Callback):
    """Stops training at the first non-finite loss and remembers where.

    train_lib turns `self.stopped_at` into an error message naming the epoch,
    the batch and the last good checkpoint (Keras's TerminateOnNaN only prints).
    """

    def __init__(self):
        super().__init__()
        self.stopped_at = None
        self.step_offset = 0
        self._epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        self.step_offset = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.stopped_at is None and not _finite_loss(logs):
            # step_offset: batches of a resumed epoch trained before the restart.
            self.stopped_at = (self._epoch, self.step_offset + batch)
            self.model.stop_training = True


class ValidationPSNR(keras.callbacks.Callback):
    """Protocol PSNR (protocol.md) of the final output on a benchmark set, every epoch.

    Adds `val_psnr_x{s}` per scale and `val_psnr` (their mean) to the epoch
    logs, so that CSVLogger and TensorBoard, placed after it, record them.
    """

    def __init__(self, images, scales, every_epochs=1):
        """images: list of (name, [H, W] uint8 protocol luminance)."""
        super().__init__()
        self.images = images
        self.scales = tuple(scales)
        self.every_epochs = every_epochs
        self.bicubic = None
        self.last = None  # {scale: PSNR} of the latest evaluation

    def _mean_psnr(self, scale, predictor):
        scores = [protocol.score_image(protocol.hr_luminance(y, scale), scale, predictor,
                                       ("psnr",))[0]["psnr"] for _, y in self.images]
        return float(np.mean(scores))

    def on_train_begin(self, logs=None):
        if self.bicubic is None:
            self.bicubic = {s: self._mean_psnr(s, protocol.bicubic_predictor) for s in self.scales}
            logging.info("validation: bicubic PSNR %s", _format(self.bicubic))

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or (epoch + 1) % self.every_epochs:
            return
        start = time.perf_counter()
        psnr = {s: self._mean_psnr(s, lambda x: predict_image(self.model, x)) for s in self.scales}
        for scale, value in psnr.items():
            logs[f"val_psnr_x{scale}"] = value
            logs[f"val_gain_x{scale}"] = value - self.bicubic[scale]
        logs["val_psnr"] = float(np.mean(list(psnr.values())))
        self.last = psnr
        logging.info("epoch %d validation PSNR %s (bicubic %s), %.1f s", epoch + 1, _format(psnr),
                     _format(self.bicubic), time.perf_counter() - start)


def _format(psnr_by_scale):
    return ", ".join(f"x{s} {v:.2f} dB" for s, v in psnr_by_scale.items())


class ImageSummaries(keras.callbacks.Callback):
    """TensorBoard images: bicubic input | model output | HR, side by side, each epoch."""

    def __init__(self, log_dir, crops):
        """crops: list of (tag, x [h, w] float, y [h, w] float) in [0, 1]."""
        super().__init__()
        self.log_dir = log_dir
        self.crops = crops
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        with self._writer.as_default(step=epoch + 1):
            for tag, x, y in self.crops:
                sr = predict_image(self.model, x)
                strip = np.concatenate([x, sr, y], axis=1).clip(0, 1)
                tf.summary.image(tag, strip[None, :, :, None].astype(np.float32))
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
