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

from absl import app, flags

from cmsc_tf import entry
from training.lib import settings
from training.lib.config import TrainConfig
from training.lib.flag_values import resolved_flags

FLAGS = flags.FLAGS
# One flag per TrainConfig field, with its default, help and choices (training/lib/settings.py).
settings.define_flags(TrainConfig, FLAGS, __name__)
# An action of this command, not a setting of the run (so not in config.json).
flags.DEFINE_bool("restart", False, "Move the run already in --model_dir aside into <model_dir>/previous-<n>/ "
                  "and start at step 0 (without it, a --model_dir holding checkpoints resumes, and one "
                  "holding checkpoints but no state.json is refused).")


def config_from_flags():
    return settings.from_flags(TrainConfig, FLAGS)


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
    from training.lib import trainer

    try:
        summary, _ = trainer.run(config, flags_text=resolved_flags(FLAGS, __name__, exclude=("restart",)),
                                     restart=FLAGS.restart)
    except (ValueError, OSError, trainer.TrainingError) as error:
        raise entry.CommandError(str(error)) from None
    print(f"training done: {summary}", flush=True)


if __name__ == "__main__":
    entry.run(main, "training.main",
              interrupted="rerun the same command to resume from the last checkpoint in --model_dir")
