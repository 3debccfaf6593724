"""Training a CMSC-family model on any Keras backend: `run(TrainConfig)`. Flag-free; main.py is the CLI.

One run = one model_dir. Resuming is automatic: when model_dir holds a
checkpoint (training/lib/checkpointing.py), the weights, the optimizer and the
global step are restored, so a killed run restarted with the same command,
on this backend or another, trains exactly the batches it had not trained yet.

The data: `training.lib.data.source.TrainingSource` (NumPy), fed by tf.data on
TensorFlow and as a generator elsewhere (`distribution.Distribution.feed`).
"""

import contextlib
import dataclasses
import importlib.util
import json
import pathlib
import time

import keras
from absl import logging

import cmsc_tf
from cmsc_tf.deploy import export as export_lib
from cmsc_tf.eval import protocol
from cmsc_tf.models.dtype_policy import dtype_policy
from cmsc_tf.io import atomic, image_sets
from cmsc_tf.numerics.degradation import degrade
from training.lib import callbacks as cb
from training.lib import checkpointing, distribution, optimizers
from training.lib.data.source import CALIBRATION_STEP, TrainingSource


class TrainingError(RuntimeError):
    """A run that cannot go on; the message says why and what to do."""


# ----------------------------------------------------------------------------
# Pieces.


def load_training_source(config):
    """The training pairs of `config.train_sets` (prepared once: degraded at every scale)."""
    images = [y for set_name in config.train_sets
              for _, y in image_sets.read_luminance_set(set_name, config.data_dir or None)]
    return TrainingSource(images, config.scales, config.patch_size, config.augment, config.pipeline,
                          config.batch_size, config.seed, config.scale_loss_weights)


def load_validation_images(config):
    """(name, uint8 luminance) pairs of the validation set, or [] when there is none."""
    if not config.val_set:
        return []
    images = image_sets.read_luminance_set(config.val_set, config.data_dir or None)
    images = images[:config.val_max_images] if config.val_max_images else images
    return [(name, centre_crop(y, config.val_crop_size)) for name, y in images]


def centre_crop(image, size):
    """The centre `size` x `size` window of `image` (each side at most the image's; 0: all of it)."""
    if not size:
        return image
    top, left = max(0, (image.shape[0] - size) // 2), max(0, (image.shape[1] - size) // 2)
    return image[top:top + size, left:left + size]


def build_and_compile(config, replicas=1):
    """Model + optimizer + the loss of Eq. 8; call inside the distribution's scope."""
    overrides = dict(config.model_overrides)
    if config.sync_batch_norm and keras.backend.backend() == "tensorflow":
        overrides["sync_batch_norm"] = True  # (keras.distribution on JAX computes global statistics)
    model = cmsc_tf.build_model(config.variant, **overrides)
    loss = cmsc_tf.cascade_loss(model, pixel_reduction=config.loss_pixel_reduction, norm=config.loss_norm)
    model.compile(build_optimizer(config, replicas), **loss, jit_compile=jit_compile(config),
                  steps_per_execution=config.steps_per_execution)
    return model


def jit_compile(config):
    """`model.compile`'s jit_compile for ``config``: --xla on TensorFlow; Keras's choice on the others."""
    return config.xla if keras.backend.backend() == "tensorflow" else "auto"


def build_optimizer(config, replicas=1):
    """The optimizer of ``config`` (learning rate, momentum, weight decay, clipping, EMA) for a fresh model."""
    return optimizers.make_optimizer(
        config.optimizer, config.learning_rate, momentum=config.momentum,
        weight_decay=config.weight_decay, clip=config.clip, clip_threshold=config.clip_threshold,
        replicas=replicas, ema_momentum=config.ema_momentum)


def image_summary_crops(images, scale, count, size=96):
    """(tag, bicubic crop, HR crop) from the centre of the first `count` images."""
    crops = []
    for name, y_uint8 in images[:count]:
        y = protocol.hr_luminance(y_uint8, scale)
        crops.append((f"x{scale}/{name}", centre_crop(degrade(y, scale), size), centre_crop(y, size)))
    return crops


def tensorboard_available():
    """Whether TensorBoard summaries can be written (they need tensorflow and tensorboard)."""
    try:
        return all(importlib.util.find_spec(name) for name in ("tensorflow", "tensorboard"))
    except (ImportError, ValueError):  # a broken or blocked installation
        return False


def make_callbacks(config, run, source, val_images, clock):
    """Callbacks in the order they must run.

    The step counter first (the others read the step); at each report point
    (epoch end, and every `eval_every_steps` steps) BN recalibration
    (validation and checkpoint must see its statistics), then validation (it
    adds val_psnr_* to the logs), both between the swaps of the averaged
    weights in and out with --ema_momentum, the NaN guard, the time budget, the writers
    (CSV log, TensorBoard) and the checkpoint last, so that a checkpoint
    always follows the log lines of the step it saves.
    """
    model_dir = pathlib.Path(config.model_dir)
    progress, chief = run.progress, run.distribution.is_chief
    nan_guard = cb.StopOnNaN(progress)
    callbacks = [
        cb.StepCounter(progress, run.steps_per_epoch, run.start_step, config.batch_size),
        cb.CosineLearningRate(config, progress, run.steps_per_epoch) if config.lr_schedule == "cosine" else
        keras.callbacks.LearningRateScheduler(
            lambda epoch, _: config.learning_rate_at(epoch, run.steps_per_epoch, progress.budget_decay_step)),
    ]
    # Report points: every epoch end, and every eval_every_steps global steps within one.
    when = (progress, run.steps_per_epoch, config.eval_every_steps)
    if config.ema_momentum:  # recalibration and validation see the averaged weights
        callbacks.append(cb.SwapEMAWeights(*when))
    if config.bn_recalibration_batches:
        callbacks.append(cb.BatchNormRecalibration(
            [source.batch(CALIBRATION_STEP + i)[:2] for i in range(config.bn_recalibration_batches)], *when))
    if val_images and chief:
        callbacks.append(cb.ValidationPSNR(val_images, config.val_scales, *when))
    if config.ema_momentum:
        callbacks.append(cb.SwapEMAWeights(*when))  # training goes on from the raw weights
    callbacks += [nan_guard, cb.TimeBudget(progress, run.steps_per_epoch, config.time_budget_s,
                                           config.decay_at_budget_fraction, clock)]
    if chief:
        summaries = config.tensorboard and tensorboard_available()
        if config.tensorboard and not summaries:
            logging.warning("TensorBoard needs tensorflow and tensorboard: writing no summaries")
        crops = (image_summary_crops(val_images, config.val_scales[0], config.image_summaries)
                 if summaries and val_images else [])
        callbacks.append(cb.RunLogs(model_dir / checkpointing.LOG_FILE, *when,
                                    summary_dir=model_dir / "tensorboard" if summaries else None, crops=crops))
    callbacks.append(cb.ResumableCheckpoint(
        str(model_dir), config.checkpoint_every_steps, run.steps_per_epoch, progress, nan_guard,
        is_chief=chief, keep_epoch_checkpoints=config.keep_epoch_checkpoints))
    pause = cb.pause_from_environment(progress)  # tests only: after the step's checkpoint
    if pause:
        callbacks.append(pause)
    return callbacks, nan_guard


@dataclasses.dataclass
class _Run:
    distribution: distribution.Distribution
    steps_per_epoch: int
    start_step: int
    progress: cb.Progress


def _fit(model, config, run, source, callbacks, nan_guard):
    """Trains from run.start_step to the end of epoch config.epochs, stopping early on NaN or budget.

    A run resumed mid-epoch first finishes that epoch (one fit), then trains
    the remaining epochs at full length (a second fit): Keras counts the
    steps of each fit from 0, the data stream does not.
    """
    spe = run.steps_per_epoch
    epoch, done = divmod(run.start_step, spe)

    def fit(first_epoch, first_step, end_epoch):
        data = run.distribution.feed(source, first_step, end_epoch * spe)
        model.fit(data, initial_epoch=first_epoch, epochs=end_epoch, steps_per_epoch=(
            end_epoch * spe - first_step if end_epoch == first_epoch + 1 else spe),
            callbacks=callbacks, verbose=config.verbose, shuffle=False)

    if done and epoch < config.epochs:
        fit(epoch, run.start_step, epoch + 1)
        epoch += 1
    if epoch < config.epochs and nan_guard.stopped_at is None and not run.progress.stopped_by_budget:
        fit(epoch, epoch * spe, config.epochs)


def _nan_error(model_dir, step):
    last = checkpointing.read_state(model_dir)
    return TrainingError(
        f"the loss became NaN/inf at step {step + 1}; training stopped. "
        + (f"The last good checkpoint is {model_dir / last['weights']} (step {last['step']}). "
           if last else "No checkpoint was written. ")
        + "Lower --learning_rate or --clip_threshold, or use --optimizer=adam, and rerun; "
        "a rerun with the same --model_dir resumes from that checkpoint.")


# ----------------------------------------------------------------------------
# The run.


# config.budget_clock -> the clock of the time budget and the logs' seconds.
CLOCKS = {"wall": time.monotonic, "cpu": time.process_time}


def run(config, flags_text=None, clock=None, restart=False):
    """Trains (or resumes) according to `config`; returns (summary dict, trained model).

    `flags_text`, if given, is written to `<model_dir>/flags.txt` (the resolved
    command line, reusable with --flagfile). `clock` measures the time budget
    (default: the one config.budget_clock names). `restart`: set the run
    already in model_dir aside and start at step 0 (checkpointing.owned_run,
    which also locks the folder for this process).
    """
    config.validate()
    clock = clock or CLOCKS[config.budget_clock]
    with dtype_policy(config.dtype_policy), _owned(config, restart):
        return _run(config, flags_text, clock)


def _owned(config, restart):
    # The workers of a multi-worker run share its model_dir (one chief writes): no lock.
    if config.strategy == "multi_worker":
        return contextlib.nullcontext()
    return checkpointing.owned_run(config.model_dir, restart)


def _run(config, flags_text, clock):
    model_dir = pathlib.Path(config.model_dir)
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(f"--model_dir={model_dir} cannot be created: {error.strerror}") from None
    if config.ema_momentum and keras.backend.backend() != "tensorflow":
        # The in-place swaps around report points and checkpoints are verified on
        # TensorFlow only; JAX's and PyTorch's trainers keep their state elsewhere mid-fit.
        raise ValueError(f"--ema_momentum needs the TensorFlow backend (this run: {keras.backend.backend()})")
    # The data first: a bad image set fails before minutes of model building.
    source = load_training_source(config)
    steps_per_epoch = config.steps_per_epoch or source.steps_per_pass
    if steps_per_epoch < 1:
        raise ValueError(f"the training set holds {source.num_paper_pairs} pairs, "
                         f"less than one batch of {config.batch_size}")
    if config.pipeline == "paper" and steps_per_epoch > source.steps_per_pass:
        raise ValueError(f"steps_per_epoch={steps_per_epoch} is more than one pass over the "
                         f"{source.num_paper_pairs} pairs allows ({source.steps_per_pass})")
    if steps_per_epoch % config.steps_per_execution:
        # Keras runs whole executions: an epoch would take batches of the next one.
        raise ValueError(f"steps_per_epoch ({steps_per_epoch}) must be a multiple of "
                         f"steps_per_execution ({config.steps_per_execution})")
    val_images = load_validation_images(config)
    keras.utils.set_random_seed(config.seed)
    dist = distribution.make(config.strategy, config.tpu, config.batch_size)
    logging.info("%s backend, strategy %s with %d replica(s); %d degraded images, %d steps of %d "
                 "pairs per epoch", keras.backend.backend(), config.strategy, dist.num_replicas,
                 len(source.lr), steps_per_epoch, config.batch_size)

    if config.init_from and dist.is_chief and checkpointing.read_state(model_dir) is None:
        checkpointing.seed_run(model_dir, config.init_from, keep_optimizer=True, keep_progress=False)
        logging.info("started %s from %s", model_dir, config.init_from)
    with dist.scope():
        model = build_and_compile(config, dist.num_replicas)
        state = checkpointing.restore(model, model_dir) or {"step": 0}
        if config.ema_momentum and _optimizer_steps(model):
            cb.swap_ema_weights(model)  # the checkpoint's model is the average; train on from the raw weights
        progress = cb.Progress(step=state["step"], seconds=float(state.get("seconds", 0.0)),
                               patches_seen=state.get("patches_seen", None if state["step"] else 0),
                               last_epoch_seconds=float(state.get("last_epoch_seconds", 0.0)),
                               budget_decay_step=state.get("budget_decay_step"))
        run_state = _Run(dist, steps_per_epoch, progress.step, progress)
        if progress.step % steps_per_epoch % config.steps_per_execution:
            raise ValueError(f"the checkpoint at step {progress.step} lies within an epoch where "
                             f"--steps_per_execution={config.steps_per_execution} cannot resume; "
                             "rerun with --steps_per_execution=1 to finish the epoch")
        if state["step"]:
            changed = checkpointing.changed_config_keys(model_dir, _config_fields(config),
                                                        ignore=("epochs", "time_budget_s", "verbose", "backend"))
            if changed:
                logging.warning("resuming %s with changed settings (%s): a new phase, or a mistake",
                                model_dir, ", ".join(changed))
            logging.info("resuming from %s at step %d", state["weights"], state["step"])
        if dist.is_chief:
            atomic.write_text(model_dir / checkpointing.CONFIG_FILE, checkpointing.config_text(
                _config_fields(config)))
            if flags_text is not None:
                atomic.write_text(model_dir / checkpointing.FLAGS_FILE, flags_text)
        if config.strategy == "multi_worker":
            from training.lib.keras_hooks import prepare_multi_worker_fit

            shape = (config.batch_size // dist.num_replicas, config.patch_size, config.patch_size, 1)
            shapes = [shape, shape] + [shape[:1]] * bool(config.scale_loss_weights)
            prepare_multi_worker_fit(model, dist.strategy, shapes)
        callbacks, nan_guard = make_callbacks(config, run_state, source, val_images, clock)
        if config.time_budget_s and progress.seconds + progress.last_epoch_seconds > config.time_budget_s:
            logging.info("the time budget of %.0f s is spent (%.0f s): raise --time_budget_s to go on",
                         config.time_budget_s, progress.seconds)
        else:
            _fit(model, config, run_state, source, callbacks, nan_guard)
    if nan_guard.stopped_at is not None:
        raise _nan_error(model_dir, nan_guard.stopped_at)
    return _finish(config, model, run_state, callbacks, source), model


def _optimizer_steps(model):
    """The optimizer's update count (0: fresh, so no moving average exists yet)."""
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def _config_fields(config):
    return dict(dataclasses.asdict(config), backend=keras.backend.backend())


def _finish(config, model, run_state, callbacks, source):
    """The run's summary (validation included), its export, and summary.json."""
    if config.ema_momentum and _optimizer_steps(model):
        cb.swap_ema_weights(model)  # what the run validated and checkpointed last, and exports
    progress = run_state.progress
    summary = {"backend": keras.backend.backend(), "step": progress.step,
               "epochs_done": progress.step // run_state.steps_per_epoch,
               "steps_per_epoch": run_state.steps_per_epoch,
               "patches_seen": progress.patches_seen, "seconds": round(progress.seconds, 1),
               "stopped_by_budget": progress.stopped_by_budget,
               "budget_decay_step": progress.budget_decay_step,
               "paper_pairs_per_pass": source.num_paper_pairs}
    validation = next((c for c in callbacks if isinstance(c, cb.ValidationPSNR)), None)
    if validation is not None:
        if validation.last is None:  # nothing trained in this process: evaluate now
            validation.set_model(model)
            validation.evaluate()
        summary.update(bicubic={s: round(v, 4) for s, v in validation.bicubic.items()},
                       psnr={s: round(v, 4) for s, v in validation.last.items()})
    chief = run_state.distribution.is_chief
    if chief and config.export_prefix:
        formats = export_lib.available_formats()
        written = export_lib.export_model(model, config.export_prefix, formats)
        summary.update({name: str(path) for name, path in written.items()})
        if set(formats) != set(export_lib.DEFAULT_FORMATS):
            summary["export_note"] = (f"SavedModel and TFLite need TensorFlow: python -m training.export "
                                      f"--model_dir={config.model_dir}")
        logging.info("exported %s", ", ".join(str(path) for path in written.values()))
    if chief:
        atomic.write_text(pathlib.Path(config.model_dir) / checkpointing.SUMMARY_FILE,
                          json.dumps(summary, indent=1, default=str) + "\n")
    return summary
