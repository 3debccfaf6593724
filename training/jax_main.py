"""Trains CMSC with Keras on the JAX (or any) backend, fed by NumPy: no TensorFlow needed.

For accelerator machines that have JAX but not TensorFlow (training.jax_lib).
The images come packed by `python -m training.pack_luminance`; checkpoints,
config.json and the log land in --model_dir in the layout of `training.main`,
so `python -m training.export --model_dir=...` exports the result (with
TensorFlow) and rerunning the same command resumes (once --time_budget_s is
spent, raise it to go on).

Usage:
  KERAS_BACKEND=jax python -m training.jax_main --flagfile=training/cmsc_full_jax.flags
"""

import sys

from absl import app, flags, logging

from training.flag_values import int_list, parse_overrides, resolved_flags, scale_weights

FLAGS = flags.FLAGS
flags.DEFINE_string("luminance", None, "The packed training images (.npz of training.pack_luminance).")
flags.DEFINE_string("model_dir", "runs/cmsc_jax", "Checkpoints, log, config.json, resolved flags.")
flags.DEFINE_string("export_dir", "", "Where training.export writes this run by default.")
flags.DEFINE_string("variant", "cmsc", "Model variant (cmsc_tf.VARIANTS).")
flags.DEFINE_list("model_overrides", [], "Model hyperparameters, name=value (as training.main).")
flags.DEFINE_list("scales", ["2", "3", "4"], "Training scales, mixed.")
flags.DEFINE_bool("augment", True, "The paper's 24 variants per image.")
flags.DEFINE_integer("batch_size", 64, "Batch size.")
flags.DEFINE_integer("steps_per_epoch", 250, "Steps between checkpoints (an 'epoch' here).")
flags.DEFINE_integer("epochs", 100, "Epochs.")
flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
flags.DEFINE_list("lr_decay_at_epochs", [], "Epochs at which the rate is multiplied by lr_decay_factor.")
flags.DEFINE_float("lr_decay_factor", 0.1, "See lr_decay_at_epochs.")
flags.DEFINE_enum("loss_pixel_reduction", "sum", ["sum", "mean"], "Eq. 8 over pixels: sum or mean.")
flags.DEFINE_enum("precision", "float32", ["float32", "mixed_float16", "mixed_bfloat16"],
                  "Keras dtype policy.")
flags.DEFINE_float("time_budget_s", 0.0, "Stop before an epoch would end past this many seconds "
                   "of training (0: no limit); the run resumes from its checkpoint.")
flags.DEFINE_float("decay_at_budget_fraction", 0.0, "Also decay the rate once this fraction of "
                   "the time budget is spent (0: never); the epoch is recorded in state.json.")
flags.DEFINE_integer("bn_recalibration_batches", 0, "At each epoch end, set the BN statistics to "
                     "their average over this many fixed batches (0: Keras's moving averages).")
flags.DEFINE_list("scale_loss_weights", [], "scale=weight for every training scale: each pair's "
                  "loss term is multiplied by its scale's weight (empty: the paper's loss).")
flags.DEFINE_integer("seed", 0, "Seed of initialisation and data order.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from training import jax_lib

    try:
        config = jax_lib.JaxTrainConfig(
            luminance=FLAGS.luminance or "", model_dir=FLAGS.model_dir, export_dir=FLAGS.export_dir,
            variant=FLAGS.variant, model_overrides=parse_overrides(FLAGS.model_overrides),
            scales=int_list("scales", FLAGS.scales), augment=FLAGS.augment, batch_size=FLAGS.batch_size,
            steps_per_epoch=FLAGS.steps_per_epoch, epochs=FLAGS.epochs,
            learning_rate=FLAGS.learning_rate, lr_decay_at_epochs=int_list("lr_decay_at_epochs", FLAGS.lr_decay_at_epochs),
            lr_decay_factor=FLAGS.lr_decay_factor, loss_pixel_reduction=FLAGS.loss_pixel_reduction,
            precision=FLAGS.precision, time_budget_s=FLAGS.time_budget_s,
            decay_at_budget_fraction=FLAGS.decay_at_budget_fraction,
            bn_recalibration_batches=FLAGS.bn_recalibration_batches,
            scale_loss_weights=scale_weights("scale_loss_weights", FLAGS.scale_loss_weights),
            seed=FLAGS.seed)
        summary = jax_lib.run(config, flags_text=resolved_flags(FLAGS, __name__))
    except (ValueError, FileNotFoundError, jax_lib.TrainingError) as error:
        logging.error("%s", error)
        sys.exit(f"error: {error}")
    print(f"training done: {summary}")


if __name__ == "__main__":
    flags.mark_flag_as_required("luminance")
    app.run(main)
