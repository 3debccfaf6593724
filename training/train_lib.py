"""Training a CMSC-family model: `run(TrainConfig)`. Flag-free; training/main.py is the CLI.

One run = one model_dir. Resuming is automatic: if model_dir holds a
checkpoint state (training/checkpointing.py), the weights, the optimizer and
the position in the data stream (epoch, batch) are restored, so a killed run
restarted with the same command trains exactly the batches it had not
trained yet, and each epoch appears once in the logs.
"""

import dataclasses
import importlib.util
import json
import os
import pathlib
import time

import keras
import tensorflow as tf
from absl import logging

import cmsc_tf
from cmsc_tf.eval import protocol
from cmsc_tf.io import atomic, tfds_sets
from cmsc_tf.numerics import degradation
from training import callbacks as cb
from training import checkpointing, optimizers
from training import pipeline as data_pipeline

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
OPTIMIZERS = ("sgd", "adam")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


class TrainingError(RuntimeError):
    """A run that cannot go on; the message says why and what to do."""


@dataclasses.dataclass
class TrainConfig:
    """Everything a run depends on. Defaults: the paper's recipe (cmsc.flags)."""

    # Model.
    variant: str = "cmsc"
    model_overrides: dict = dataclasses.field(default_factory=dict)
    synchronized_bn: bool = False
    # Data.
    train_sets: tuple = ("t91", "bsd200")
    val_set: str = "set5"
    val_scales: tuple = (2, 3, 4)
    val_max_images: int = 0
    data_dir: str = ""
    tfds_dir: str = ""
    pipeline: data_pipeline.PipelineConfig = dataclasses.field(
        default_factory=data_pipeline.PipelineConfig)
    steps_per_epoch: int = 0
    # Optimisation.
    optimizer: str = "sgd"
    learning_rate: float = 0.1
    lr_decay_epochs: int = 10
    lr_decay_factor: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    clip_value: float = 0.4
    # Eq. 8 sums the squared error over a patch's pixels ("sum"); "mean" divides
    # it by the patch area, which shrinks the gradients 1681-fold at 41x41.
    loss_pixel_reduction: str = "sum"
    epochs: int = 50
    # Where and how.
    model_dir: str = "runs/cmsc"
    export_dir: str = "savedmodels/cmsc"
    strategy: str = "default"
    tpu: str = ""
    precision: str = "float32"
    jit_compile: bool = False
    steps_per_execution: int = 1
    checkpoint_every_steps: int = 1000
    bn_recalibration_batches: int = 0
    tensorboard: bool = True
    image_summaries: int = 2
    verbose: int = 1
    seed: int = 0

    def validate(self):
        checks = [
            (self.variant in cmsc_tf.VARIANTS, f"variant must be one of {cmsc_tf.VARIANTS}"),
            (self.strategy in STRATEGIES, f"strategy must be one of {STRATEGIES}"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}"),
            (self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}"),
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.learning_rate > 0, "learning_rate must be > 0"),
            (self.steps_per_epoch > 0 or self.pipeline.mode == "paper",
             "the random_crop pipeline needs steps_per_epoch > 0"),
            (bool(self.train_sets), "train_sets is empty"),
            (bool(self.model_dir), "model_dir is empty"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)


# ----------------------------------------------------------------------------
# Pieces.


def make_strategy(name, tpu=""):
    """The tf.distribute strategy called `name` (see STRATEGIES)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        # All local GPUs; without GPUs, every logical CPU device (one unless split).
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "multi_worker":
        # Cluster from the TF_CONFIG environment variable (see docs/training.md).
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy=multi_worker needs the TF_CONFIG environment variable")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"unknown strategy {name!r}; choose one of {STRATEGIES}")


def is_chief(strategy):
    # False only on non-chief workers of a multi-worker cluster.
    return bool(strategy.extended.should_checkpoint)


def make_optimizer(config, steps_per_epoch):
    """The configured optimizer (training/optimizers.py)."""
    return optimizers.make_optimizer(
        config.optimizer, config.learning_rate, steps_per_epoch,
        lr_decay_epochs=config.lr_decay_epochs, lr_decay_factor=config.lr_decay_factor,
        momentum=config.momentum, weight_decay=config.weight_decay, clip_value=config.clip_value)


def build_and_compile(config, steps_per_epoch):
    """Model + optimizer + loss; call inside the strategy's scope."""
    overrides = dict(config.model_overrides)
    if config.synchronized_bn:  # batch statistics over the global batch of all replicas
        overrides["sync_batch_norm"] = True
    model = cmsc_tf.build_model(config.variant, **overrides)
    loss = cmsc_tf.cascade_loss(model, pixel_reduction=config.loss_pixel_reduction)
    model.compile(make_optimizer(config, steps_per_epoch), **loss,
                  jit_compile=config.jit_compile, steps_per_execution=config.steps_per_execution)
    return model


def prepare_for_multi_worker_fit(model, strategy, batch_size, patch_size):
    """Works around two failures of Keras 3's fit under MultiWorkerMirroredStrategy.

    (keras-team/keras#20585, tensorflow/tensorflow#72388.) Keras 3.15
    1. builds metrics/optimizer from a batch it first reduces with
       `strategy.reduce`, which MultiWorkerMirroredStrategy cannot do eagerly
       on per-replica data ("Attempt to convert a value (PerReplica...)");
    2. averages the per-replica logs with `reduce("MEAN", axis=0)`, which fails
       on scalar logs ("Invalid reduction dimension 0").
    Here the model is built from a local batch of the right shape (only its
    shapes are used), and the train function is Keras's own single step with
    the logs averaged over replicas by `reduce("MEAN", axis=None)`. Only
    --strategy=multi_worker uses this; --steps_per_execution is 1 there.
    """
    shape = (batch_size // strategy.num_replicas_in_sync, patch_size, patch_size, 1)
    with strategy.scope():
        model._symbolic_build(data_batch=(tf.zeros(shape), tf.zeros(shape)))
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None

    @tf.function(jit_compile=False)
    def one_step(iterator):
        outputs = strategy.run(model.train_step, args=(next(iterator),))
        return tf.nest.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), outputs)

    model.train_function = one_step


def load_training_images(train_sets, data_dir="", tfds_dir=""):
    """(name, uint8 luminance) pairs of the images of `train_sets`, set after set."""
    images = []
    for set_name in train_sets:
        images += [(f"{set_name}/{name}", data_pipeline.hr_luminance(image, gray)) for name, image, gray
                   in tfds_sets.load_arrays(set_name, data_dir or None, tfds_dir or None)]
    return images


def load_training_table(config):
    """The training images of `config.train_sets` as an in-memory luminance table."""
    images = load_training_images(config.train_sets, config.data_dir, config.tfds_dir)
    return data_pipeline.ImageTable([y for _, y in images])


def load_validation_images(config):
    """(name, uint8 luminance) pairs of the validation set, or [] when there is none."""
    if not config.val_set:
        return []
    arrays = tfds_sets.load_arrays(config.val_set, config.data_dir or None, config.tfds_dir or None)
    images = [(name, data_pipeline.hr_luminance(image, gray)) for name, image, gray in sorted(arrays)]
    return images[:config.val_max_images] if config.val_max_images else images


def image_summary_crops(images, scale, count, size=96):
    """(tag, bicubic crop, HR crop) from the centre of the first `count` images."""
    crops = []
    for name, y_uint8 in images[:count]:
        y = protocol.hr_luminance(y_uint8, scale)
        x = degradation.degrade(y, scale)
        top, left = max(0, (y.shape[0] - size) // 2), max(0, (y.shape[1] - size) // 2)
        window = (slice(top, top + size), slice(left, left + size))
        crops.append((f"x{scale}/{name}", x[window], y[window]))
    return crops


def calibration_batches(table, config):
    """A fixed set of training batches for BN recalibration (the same every epoch)."""
    small = dataclasses.replace(config.pipeline,
                                shuffle_buffer=min(256, config.pipeline.shuffle_buffer))
    # An epoch index no training epoch uses: its batches are fixed by the seed alone.
    dataset = data_pipeline.epoch_batches(table, small, 2**40, config.bn_recalibration_batches)
    return lambda: iter(dataset)


def make_callbacks(config, strategy, steps_per_epoch, val_images, table):
    """Callbacks in the order they must run at each epoch end.

    BN recalibration first (validation and checkpoint must see its statistics),
    then validation (it adds val_psnr_* to the logs), then the NaN guard,
    then the writers (CSV, TensorBoard) and the checkpoint last, so that a
    checkpoint always follows the log lines of the epoch it ends.
    """
    model_dir = pathlib.Path(config.model_dir)
    chief = is_chief(strategy)
    nan_guard = cb.StopOnNaN()
    checkpoint = cb.ResumableCheckpoint(str(model_dir), config.checkpoint_every_steps,
                                        steps_per_epoch, is_chief=chief)
    callbacks = []
    if config.bn_recalibration_batches:
        callbacks.append(cb.BatchNormRecalibration(calibration_batches(table, config)))
    if val_images and chief:
        callbacks.append(cb.ValidationPSNR(val_images, config.val_scales))
    callbacks.append(nan_guard)
    if chief:
        callbacks.append(keras.callbacks.CSVLogger(str(model_dir / "training_log.csv"),
                                                   append=True))
        if config.tensorboard and importlib.util.find_spec("tensorboard") is None:
            logging.warning("TensorBoard is not installed (pip install tensorboard): "
                            "writing no TensorBoard summaries")
        elif config.tensorboard:
            callbacks.append(keras.callbacks.TensorBoard(
                str(model_dir / "tensorboard"), update_freq=max(1, config.checkpoint_every_steps // 10)))
            if val_images and config.image_summaries:
                callbacks.append(cb.ImageSummaries(
                    str(model_dir / "tensorboard" / "images"),
                    image_summary_crops(val_images, config.val_scales[0], config.image_summaries)))
    callbacks.append(checkpoint)
    return callbacks, nan_guard, checkpoint


def inference_copy(model):
    """The trained model rebuilt in float32, uncompiled: what users load for inference.

    Leaves the training optimizer (a project class) and any mixed-precision
    policy out of the exported files.
    """
    policy = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy("float32")
    try:
        # Synchronized BN only matters in training; the copy runs anywhere.
        copy = model.__class__.from_config({**model.get_config(), "sync_batch_norm": False})
    finally:
        keras.mixed_precision.set_dtype_policy(policy)
    copy.set_weights(model.get_weights())
    return copy


EXPORT_FORMATS = ("keras", "saved_model", "tflite_float16")


def export_model(model, export_dir, formats=EXPORT_FORMATS):
    """Writes the trained model next to `export_dir`; returns {format: path}.

    - `keras`: `<export_dir>.keras`.
    - `saved_model`: `cmsc_tf.export_saved_model`'s `<export_dir>/<version>/`
      (TF-Serving layout, RGB uint8 / encoded-image / luminance signatures);
      each export takes the next free version number, so TF-Serving picks the
      newest and nothing is overwritten.
    - `tflite_float16`: `<export_dir>_float16.tflite` and its metadata file, for LiteRT.

    Every file is written atomically (temporary name, then rename).
    """
    unknown = set(formats) - set(EXPORT_FORMATS)
    if unknown:
        raise ValueError(f"unknown export formats {sorted(unknown)}; choose from {EXPORT_FORMATS}")
    export_dir = pathlib.Path(export_dir)
    export_dir.parent.mkdir(parents=True, exist_ok=True)
    model = inference_copy(model)
    written = {}
    if "keras" in formats:
        written["keras"] = export_dir.with_suffix(".keras")
        with atomic.atomic_path(written["keras"]) as tmp_keras:
            model.save(tmp_keras)
    if "saved_model" in formats:
        versions = [int(p.name) for p in export_dir.glob("*") if p.name.isdigit()]
        written["saved_model"] = pathlib.Path(cmsc_tf.export_saved_model(
            model, export_dir.parent, export_dir.name, version=max(versions, default=0) + 1))
    if "tflite_float16" in formats:
        from cmsc_tf.deploy import tflite

        written["tflite_float16"] = tflite.save(
            model, export_dir.parent / f"{export_dir.name}_float16.tflite", "float16")
    return written


def export_checkpoint(model_dir, export_dir=None, formats=None, weights=None):
    """Rebuilds the run in `model_dir`, loads its latest checkpoint, exports it; returns {format: path}.

    `weights`: another weights file of the same run (e.g. one that
    `training.sidecar_eval --keep_checkpoints` kept) instead of the latest.
    """
    model_dir = pathlib.Path(model_dir)
    config_path = model_dir / "config.json"
    state = checkpointing.read_state(model_dir) if weights is None else {"weights": weights}
    if state is None or not config_path.is_file():
        raise FileNotFoundError(f"{model_dir}: no checkpoint to export (needs state.json and config.json)")
    weights_path = model_dir / state["weights"]  # an absolute `weights` stays as it is
    if not weights_path.is_file():
        raise FileNotFoundError(f"{weights_path}: no such weights file")
    model, config = checkpointing.build_from_run(model_dir, weights_path)
    export_dir = export_dir or config["export_dir"]
    if not export_dir:
        raise ValueError(f"{model_dir}: the run has no export_dir; pass --export_dir")
    return export_model(model, export_dir, formats or EXPORT_FORMATS)


def export_keras_file(keras_path, export_dir, formats):
    """Exports a saved `.keras` model (e.g. a shipped one) to other formats; returns {format: path}."""
    keras_path = pathlib.Path(keras_path)
    if not keras_path.is_file():
        raise FileNotFoundError(f"{keras_path}: no such .keras file")
    model = keras.saving.load_model(keras_path, compile=False, safe_mode=True)
    return export_model(model, export_dir, formats)


def _warn_on_changed_config(model_dir, config):
    changed = checkpointing.changed_config_keys(model_dir, dataclasses.asdict(config), ignore=("epochs",))
    if changed:
        logging.warning("resuming %s with a changed configuration (%s): the data stream and "
                        "schedule may not continue exactly", model_dir, ", ".join(changed))


# ----------------------------------------------------------------------------
# The run.


def run(config, flags_text=None):
    """Trains (or resumes) according to `config`; returns (summary dict, trained model).

    `flags_text`, if given, is written to `<model_dir>/flags.txt` (the resolved
    command line, reusable with --flagfile).
    """
    config.validate()
    # The dtype policy is process-global in Keras: set it for this run only.
    previous_policy = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(config.precision)
    try:
        return _run(config, flags_text)
    finally:
        keras.mixed_precision.set_dtype_policy(previous_policy)


def _run(config, flags_text):
    keras.utils.set_random_seed(config.seed)
    strategy = make_strategy(config.strategy, config.tpu)
    logging.info("strategy %s with %d replica(s)", config.strategy, strategy.num_replicas_in_sync)

    table = load_training_table(config)
    if config.pipeline.mode == "paper":
        num_patches = data_pipeline.count_paper_patches(
            table.shapes, config.pipeline.scales, config.pipeline.patch_size, config.pipeline.augment)
        steps_per_epoch = config.steps_per_epoch or data_pipeline.steps_per_epoch(
            num_patches, config.pipeline.batch_size)
        logging.info("training set: %d images, %d patches of %dx%d per epoch (%d variants, "
                     "scales %s) = %d steps of batch %d", len(table), num_patches,
                     config.pipeline.patch_size, config.pipeline.patch_size,
                     config.pipeline.num_variants, config.pipeline.scales,
                     steps_per_epoch, config.pipeline.batch_size)
        if steps_per_epoch > data_pipeline.steps_per_epoch(num_patches, config.pipeline.batch_size):
            raise ValueError(f"steps_per_epoch={steps_per_epoch} is more than one pass over the "
                             f"{num_patches} patches allows")
    else:
        num_patches = steps_per_epoch = config.steps_per_epoch
        num_patches *= config.pipeline.batch_size
        logging.info("training set: %d images, random crops, %d patches per epoch = %d steps "
                     "of batch %d", len(table), num_patches, steps_per_epoch,
                     config.pipeline.batch_size)
    if steps_per_epoch < 1:
        raise ValueError("the training set holds less than one batch")
    val_images = load_validation_images(config)

    with strategy.scope():
        model = build_and_compile(config, steps_per_epoch)
        state = checkpointing.restore(model, config.model_dir)

    if config.strategy == "multi_worker":
        if config.steps_per_execution != 1:
            raise ValueError("--strategy=multi_worker needs --steps_per_execution=1")
        prepare_for_multi_worker_fit(model, strategy, config.pipeline.batch_size,
                                     config.pipeline.patch_size)
    model_dir = pathlib.Path(config.model_dir)
    chief = is_chief(strategy)
    if state:
        _warn_on_changed_config(model_dir, config)
        logging.info("resuming from %s: epoch %d, step %d (global step %d)", state["weights"],
                     state["epoch"], state["step"], state["epoch"] * steps_per_epoch + state["step"])
    start_epoch, start_step = (state["epoch"], state["step"]) if state else (0, 0)
    if chief:
        checkpointing.write_atomically(model_dir / "config.json",
                                       checkpointing.config_text(dataclasses.asdict(config)))
        if flags_text is not None:
            checkpointing.write_atomically(model_dir / "flags.txt", flags_text)
    callbacks, nan_guard, checkpoint = make_callbacks(config, strategy, steps_per_epoch, val_images, table)

    def fit(first_epoch, first_step, end_epoch):
        checkpoint.step_offset = nan_guard.step_offset = first_step
        data = data_pipeline.training_dataset(table, config.pipeline, steps_per_epoch,
                                         start_epoch=first_epoch, start_step=first_step,
                                         end_epoch=end_epoch)
        model.fit(data, initial_epoch=first_epoch, epochs=end_epoch,
                  steps_per_epoch=steps_per_epoch - first_step if first_step else steps_per_epoch,
                  callbacks=callbacks, verbose=config.verbose, shuffle=False)

    start = time.perf_counter()
    if start_epoch < config.epochs:
        if start_step:  # finish the interrupted epoch, then the rest at full length
            fit(start_epoch, start_step, start_epoch + 1)
            start_epoch += 1
        if start_epoch < config.epochs and nan_guard.stopped_at is None:
            fit(start_epoch, 0, config.epochs)
    seconds = time.perf_counter() - start

    if nan_guard.stopped_at is not None:
        epoch, batch = nan_guard.stopped_at
        last = checkpointing.read_state(model_dir)
        raise TrainingError(
            f"the loss became NaN/inf at epoch {epoch + 1}, batch {batch + 1}; training stopped. "
            + (f"The last good checkpoint is {model_dir / last['weights']} (epoch {last['epoch']}, "
               f"step {last['step']}). " if last else "No checkpoint was written. ")
            + "Lower --learning_rate or --clip_value, or use --optimizer=adam, and rerun; "
            "a rerun with the same --model_dir resumes from that checkpoint.")

    summary = {"epochs": config.epochs, "steps_per_epoch": steps_per_epoch,
               "patches_per_epoch": num_patches, "seconds": seconds,
               "iterations": int(keras.ops.convert_to_numpy(model.optimizer.iterations))}
    validation = next((c for c in callbacks if isinstance(c, cb.ValidationPSNR)), None)
    if validation is not None:
        if validation.last is None:  # nothing trained in this process: evaluate now
            validation.set_model(model)
            validation.on_train_begin()
            validation.on_epoch_end(config.epochs - 1, {})
        summary.update(bicubic={s: round(v, 4) for s, v in validation.bicubic.items()},
                       psnr={s: round(v, 4) for s, v in validation.last.items()})
    if chief and config.export_dir:
        written = export_model(model, config.export_dir)
        summary.update({name: str(path) for name, path in written.items()})
        logging.info("exported %s", ", ".join(str(path) for path in written.values()))
    if chief:
        checkpointing.write_atomically(model_dir / "summary.json",
                                       json.dumps(summary, indent=1, default=str) + "\n")
    return summary, model

