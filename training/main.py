"""Trains a CMSC-family super-resolution model on any Keras backend.

Usage (from the repository root):

    python -m training.main --flagfile=quick.flags                 # small CMSC on skimage photos
    CMSC_DATA_DIR=../shared/datasets python -m training.main --flagfile=cmsc.flags   # the paper's recipe
    python -m training.main --flagfile=cmsc.flags --strategy=mirrored    # every local GPU
    KERAS_BACKEND=jax python -m training.main --flagfile=cmsc.flags      # a JAX host without TensorFlow

Rerunning the same command resumes from the checkpoint in --model_dir, also
on another backend. Every flag is described in docs/training.md; the resolved
flags are written to <model_dir>/flags.txt and the settings to config.json.
TensorFlow's C++ start-up lines are hidden unless --tf_log (cmsc_tf/entry.py).
"""

import sys

from absl import app, flags, logging

from cmsc_tf import entry
from training import optimizers
from training.config import TrainConfig
from training.flag_values import int_list, parse_overrides, resolved_flags, scale_weights

FLAGS = flags.FLAGS
_D = TrainConfig()  # the defaults, defined once


def _list(values):
    return [str(v) for v in values]


# Model.
flags.DEFINE_string("variant", _D.variant, "Model variant (cmsc_tf.VARIANTS).")
flags.DEFINE_list("model_overrides", [], "Constructor overrides of the variant as key=value, e.g. "
                  "num_features=32,num_stages=2,reconstruction_initializer=zeros.")
flags.DEFINE_bool("synchronized_bn", _D.synchronized_bn,
                  "Batch-norm statistics over the global batch of all replicas (tf.distribute; "
                  "keras.distribution on JAX always does this).")
# Data.
flags.DEFINE_string("data_dir", None, "Datasets folder (layout of shared/datasets); "
                    "default: $CMSC_DATA_DIR. Not needed for the skimage sets.")
flags.DEFINE_list("train_sets", _list(_D.train_sets), "Training image sets, concatenated.")
flags.DEFINE_string("val_set", _D.val_set, "Validation set of the per-epoch PSNR ('' for none).")
flags.DEFINE_list("val_scales", _list(_D.val_scales), "Scales of the validation PSNR.")
flags.DEFINE_integer("val_max_images", _D.val_max_images, "Validate on the first N images only (0: all).")
flags.DEFINE_enum("pipeline", _D.pipeline, ["paper", "random_crop"],
                  "paper: every 41x41 grid pair of the 24 variants per pass, globally shuffled; "
                  "random_crop: pairs drawn at random positions.")
flags.DEFINE_list("scales", _list(_D.scales), "Training scales, mixed (random_crop: a scale listed "
                  "twice is drawn twice as often).")
flags.DEFINE_integer("patch_size", _D.patch_size, "HR/LR pair size.")
flags.DEFINE_bool("augment", _D.augment, "The paper's 24 variants (0.7/0.5 sizes, turns, flips).")
flags.DEFINE_integer("batch_size", _D.batch_size, "Global batch size (split over replicas).")
flags.DEFINE_integer("steps_per_epoch", _D.steps_per_epoch,
                     "Steps per epoch (0: one pass over the paper pairs).")
flags.DEFINE_integer("seed", _D.seed, "Seed of initialisation and of every data choice.")
# Optimisation.
flags.DEFINE_enum("optimizer", _D.optimizer, ["sgd", "adam"], "Optimizer.")
flags.DEFINE_float("learning_rate", _D.learning_rate, "Initial learning rate.")
flags.DEFINE_list("lr_decay_epochs", _list(_D.lr_decay_epochs),
                  "Epochs (0-based) from which the rate is multiplied by lr_decay_factor once more.")
flags.DEFINE_float("lr_decay_factor", _D.lr_decay_factor, "See lr_decay_epochs.")
flags.DEFINE_float("momentum", _D.momentum, "SGD momentum.")
flags.DEFINE_float("weight_decay", _D.weight_decay, "Decoupled weight decay (0: none).")
flags.DEFINE_enum("clip", _D.clip, list(optimizers.CLIPPING),
                  "Gradient clipping: each element to [-t, t] (value), the global L2 norm to t "
                  "(global_norm), each element to [-t/lr, t/lr] (adjustable, VDSR's), or none.")
flags.DEFINE_float("clip_threshold", _D.clip_threshold, "t of --clip.")
flags.DEFINE_enum("loss_pixel_reduction", _D.loss_pixel_reduction, ["sum", "mean"],
                  "Eq. 8's squared error summed over a pair's pixels, or averaged.")
flags.DEFINE_list("scale_loss_weights", [], "scale=weight for every training scale: each pair's "
                  "term of Eq. 8 is multiplied by its scale's weight (empty: the paper's loss).")
flags.DEFINE_integer("epochs", _D.epochs, "Epochs.")
flags.DEFINE_float("time_budget_s", _D.time_budget_s, "Stop at the epoch end after which the next "
                   "epoch would pass this many seconds (epochs with their validation; 0: no limit); "
                   "a rerun resumes.")
flags.DEFINE_float("decay_at_budget_fraction", _D.decay_at_budget_fraction, "Also decay the rate "
                   "from the epoch after this fraction of the time budget is spent (0: never).")
# Where and how.
flags.DEFINE_string("model_dir", _D.model_dir, "Checkpoints, logs, TensorBoard, resolved flags.")
flags.DEFINE_string("export_dir", _D.export_dir, "Final model: <export_dir>.keras, and with "
                    "TensorFlow the SavedModel <export_dir>/<version>/ and TFLite ('' for none).")
flags.DEFINE_enum("strategy", _D.strategy, ["default", "mirrored", "multi_worker", "tpu"],
                  "Data parallelism (training/distribution.py); multi_worker reads TF_CONFIG.")
flags.DEFINE_string("tpu", _D.tpu, "TPU name or address for --strategy=tpu.")
flags.DEFINE_enum("precision", _D.precision, ["float32", "mixed_float16", "mixed_bfloat16"],
                  "Keras dtype policy (mixed precision).")
flags.DEFINE_bool("xla", _D.xla, "TensorFlow: compile the train step with XLA (JAX always does).")
flags.DEFINE_integer("steps_per_execution", _D.steps_per_execution, "Batches per compiled call.")
flags.DEFINE_integer("checkpoint_every_steps", _D.checkpoint_every_steps,
                     "Checkpoint every N steps (and at every epoch end; 0: epoch ends only).")
flags.DEFINE_integer("eval_every_steps", _D.eval_every_steps,
                     "Also validate and write the logs (CSV, TensorBoard) every N global steps within an "
                     "epoch (0: at epoch ends only); a paper epoch is 23,159 steps.")
flags.DEFINE_bool("keep_epoch_checkpoints", _D.keep_epoch_checkpoints,
                  "Keep the checkpoint of every epoch end (else only the latest).")
flags.DEFINE_integer("bn_recalibration_batches", _D.bn_recalibration_batches,
                     "At each epoch end and report point, set BN moving statistics to the average over this many "
                     "fixed training batches (0: keep Keras's moving averages).")
flags.DEFINE_bool("tensorboard", _D.tensorboard, "TensorBoard scalars and image summaries.")
flags.DEFINE_integer("image_summaries", _D.image_summaries, "Validation images shown as LR|SR|HR crops.")
flags.DEFINE_integer("verbose", _D.verbose, "Keras verbosity: 0 silent, 1 progress bar, 2 a line per epoch.")


def config_from_flags():
    return TrainConfig(
        variant=FLAGS.variant, model_overrides=parse_overrides(FLAGS.model_overrides),
        synchronized_bn=FLAGS.synchronized_bn, data_dir=FLAGS.data_dir or "",
        train_sets=tuple(FLAGS.train_sets), val_set=FLAGS.val_set,
        val_scales=int_list("val_scales", FLAGS.val_scales), val_max_images=FLAGS.val_max_images,
        pipeline=FLAGS.pipeline, scales=int_list("scales", FLAGS.scales), patch_size=FLAGS.patch_size,
        augment=FLAGS.augment, batch_size=FLAGS.batch_size, steps_per_epoch=FLAGS.steps_per_epoch,
        seed=FLAGS.seed, optimizer=FLAGS.optimizer, learning_rate=FLAGS.learning_rate,
        lr_decay_epochs=int_list("lr_decay_epochs", FLAGS.lr_decay_epochs),
        lr_decay_factor=FLAGS.lr_decay_factor, momentum=FLAGS.momentum,
        weight_decay=FLAGS.weight_decay, clip=FLAGS.clip, clip_threshold=FLAGS.clip_threshold,
        loss_pixel_reduction=FLAGS.loss_pixel_reduction,
        scale_loss_weights=scale_weights("scale_loss_weights", FLAGS.scale_loss_weights),
        epochs=FLAGS.epochs, time_budget_s=FLAGS.time_budget_s,
        decay_at_budget_fraction=FLAGS.decay_at_budget_fraction, model_dir=FLAGS.model_dir,
        export_dir=FLAGS.export_dir, strategy=FLAGS.strategy, tpu=FLAGS.tpu, precision=FLAGS.precision,
        xla=FLAGS.xla, steps_per_execution=FLAGS.steps_per_execution,
        checkpoint_every_steps=FLAGS.checkpoint_every_steps, eval_every_steps=FLAGS.eval_every_steps,
        keep_epoch_checkpoints=FLAGS.keep_epoch_checkpoints,
        bn_recalibration_batches=FLAGS.bn_recalibration_batches, tensorboard=FLAGS.tensorboard,
        image_summaries=FLAGS.image_summaries, verbose=FLAGS.verbose)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        config = config_from_flags()
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    # After the flags: --help and usage errors answer without loading a backend.
    # TensorFlow too where installed, on any backend: TensorBoard and Keras's
    # saving (a JAX run's .keras export) load it anyway.
    entry.load("keras", "tensorflow")
    try:
        config.validate()
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    from training import train_lib

    try:
        summary, _ = train_lib.run(config, flags_text=resolved_flags(FLAGS, __name__))
    except (ValueError, OSError, train_lib.TrainingError) as error:
        entry.fresh_line()
        logging.error("%s", error)
        sys.exit(f"error: {error}")
    print(f"training done: {summary}", flush=True)


if __name__ == "__main__":
    entry.run(main, "training.main",
              interrupted="rerun the same command to resume from the last checkpoint in --model_dir")
