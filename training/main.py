"""Trains a CMSC-family super-resolution model.

Usage (from the repository root):

    python -m training.main --flagfile=cmsc.flags            # the paper's recipe
    python -m training.main --flagfile=quick.flags           # small CMSC on skimage photos
    python -m training.main --flagfile=cmsc.flags --strategy=mirrored --batch_size=64

Rerunning the same command resumes from the checkpoint in --model_dir.
Every flag is described in docs/training.md; the resolved flags are written
to <model_dir>/flags.txt.
"""

import sys

from absl import app, flags, logging

from training.flag_values import int_list, parse_overrides, resolved_flags

FLAGS = flags.FLAGS

# Model.
flags.DEFINE_string("variant", "cmsc", "Model variant (cmsc_tf.VARIANTS).")
flags.DEFINE_list("model_overrides", [],
                  "Constructor overrides of the variant as key=value, e.g. "
                  "num_features=32,num_stages=2,reconstruction_initializer=zeros.")
flags.DEFINE_bool("synchronized_bn", False,
                  "Batch-norm statistics over the global batch of all replicas.")
# Data.
flags.DEFINE_string("data_dir", None, "Datasets folder (layout of shared/datasets); "
                    "default: $CMSC_DATA_DIR. Not needed for the skimage sets.")
flags.DEFINE_string("tfds_dir", None, "Where TFDS stores prepared sets (default ~/tensorflow_datasets).")
flags.DEFINE_list("train_sets", ["t91", "bsd200"], "Training image sets, concatenated.")
flags.DEFINE_string("val_set", "set5", "Validation set for the per-epoch PSNR ('' for none).")
flags.DEFINE_list("val_scales", ["2", "3", "4"], "Scales of the validation PSNR.")
flags.DEFINE_integer("val_max_images", 0, "Validate on the first N images only (0: all).")
flags.DEFINE_enum("pipeline", "paper", ["paper", "random_crop"],
                  "paper: all 41x41 grid patches of all variants; random_crop: random crops.")
flags.DEFINE_list("scales", ["2", "3", "4"], "Training scales, mixed in one set.")
flags.DEFINE_integer("patch_size", 41, "HR/LR sub-image size.")
flags.DEFINE_bool("augment", True, "The paper's 24 variants per image (flips, rotations, 0.7/0.5).")
flags.DEFINE_integer("crops_per_image", 16, "random_crop: crops per degraded image.")
flags.DEFINE_integer("shuffle_buffer", 8192, "Patch shuffle buffer.")
flags.DEFINE_integer("batch_size", 32, "Global batch size (split over replicas).")
flags.DEFINE_integer("steps_per_epoch", 0, "Steps per epoch (0: one pass over the paper patches).")
flags.DEFINE_integer("seed", 0, "Seed of initialisation and data order.")
# Optimisation.
flags.DEFINE_enum("optimizer", "sgd", ["sgd", "adam"], "Optimizer.")
flags.DEFINE_float("learning_rate", 0.1, "Initial learning rate.")
flags.DEFINE_integer("lr_decay_epochs", 10, "Multiply the learning rate by lr_decay_factor every N epochs.")
flags.DEFINE_float("lr_decay_factor", 0.1, "See lr_decay_epochs.")
flags.DEFINE_float("momentum", 0.9, "SGD momentum.")
flags.DEFINE_float("weight_decay", 1e-4, "Weight decay (0: none).")
flags.DEFINE_float("clip_value", 0.4, "Clip each gradient element to [-v, v] (0: no clipping).")
flags.DEFINE_enum("loss_pixel_reduction", "sum", ["sum", "mean"],
                  "Eq. 8's squared error summed over a patch's pixels, or averaged.")
flags.DEFINE_integer("epochs", 50, "Epochs.")
# Where and how.
flags.DEFINE_string("model_dir", "runs/cmsc", "Checkpoints, logs, TensorBoard, resolved flags.")
flags.DEFINE_string("export_dir", "savedmodels/cmsc",
                    "Final model: <export_dir>.keras and the serving SavedModel <export_dir>/<version>/ ('' for none).")
flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multi_worker", "tpu"],
                  "tf.distribute strategy; multi_worker reads TF_CONFIG.")
flags.DEFINE_string("tpu", "", "TPU name or address for --strategy=tpu.")
flags.DEFINE_enum("precision", "float32", ["float32", "mixed_float16", "mixed_bfloat16"],
                  "Keras dtype policy (mixed precision).")
flags.DEFINE_bool("xla", False, "Compile the train step with XLA (jit_compile).")
flags.DEFINE_integer("steps_per_execution", 1, "Batches per compiled call.")
flags.DEFINE_integer("checkpoint_every_steps", 1000, "Checkpoint every N steps (and every epoch).")
flags.DEFINE_integer("bn_recalibration_batches", 0,
                     "At each epoch end, set BN moving statistics to the average over this many "
                     "fixed training batches (0: keep Keras's moving averages).")
flags.DEFINE_bool("tensorboard", True, "TensorBoard scalars and image summaries.")
flags.DEFINE_integer("image_summaries", 2, "Validation images shown as LR|SR|HR crops.")
flags.DEFINE_integer("verbose", 1, "Keras verbosity: 0 silent, 1 progress bar, 2 one line per epoch.")


def config_from_flags():
    from training import pipeline, train_lib  # imported after flag parsing: TF is slow to load

    return train_lib.TrainConfig(
        variant=FLAGS.variant, model_overrides=parse_overrides(FLAGS.model_overrides),
        synchronized_bn=FLAGS.synchronized_bn,
        train_sets=tuple(FLAGS.train_sets), val_set=FLAGS.val_set,
        val_scales=int_list("val_scales", FLAGS.val_scales), val_max_images=FLAGS.val_max_images,
        data_dir=FLAGS.data_dir or "", tfds_dir=FLAGS.tfds_dir or "",
        pipeline=pipeline.PipelineConfig(
            scales=int_list("scales", FLAGS.scales), patch_size=FLAGS.patch_size,
            augment=FLAGS.augment, mode=FLAGS.pipeline, crops_per_image=FLAGS.crops_per_image,
            batch_size=FLAGS.batch_size, shuffle_buffer=FLAGS.shuffle_buffer, seed=FLAGS.seed),
        steps_per_epoch=FLAGS.steps_per_epoch,
        optimizer=FLAGS.optimizer, learning_rate=FLAGS.learning_rate,
        lr_decay_epochs=FLAGS.lr_decay_epochs, lr_decay_factor=FLAGS.lr_decay_factor,
        momentum=FLAGS.momentum, weight_decay=FLAGS.weight_decay, clip_value=FLAGS.clip_value,
        loss_pixel_reduction=FLAGS.loss_pixel_reduction, epochs=FLAGS.epochs,
        model_dir=FLAGS.model_dir, export_dir=FLAGS.export_dir,
        strategy=FLAGS.strategy, tpu=FLAGS.tpu, precision=FLAGS.precision,
        jit_compile=FLAGS.xla, steps_per_execution=FLAGS.steps_per_execution,
        checkpoint_every_steps=FLAGS.checkpoint_every_steps,
        bn_recalibration_batches=FLAGS.bn_recalibration_batches, tensorboard=FLAGS.tensorboard,
        image_summaries=FLAGS.image_summaries, verbose=FLAGS.verbose, seed=FLAGS.seed)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from training import train_lib

    try:
        summary, _ = train_lib.run(config_from_flags(), flags_text=resolved_flags(FLAGS, __name__))
    except (ValueError, FileNotFoundError, train_lib.TrainingError) as error:
        logging.error("%s", error)
        sys.exit(f"error: {error}")
    logging.info("done: %s", summary)
    print(f"training done: {summary}")


if __name__ == "__main__":
    app.run(main)
