"""Scores each checkpoint a training run writes, from a second process (see training/sidecar_lib.py).

Usage (from the repository root), beside a running `training.jax_main`:

    python -m training.sidecar_eval --model_dir=runs/cmsc_compact_phase3 \\
        --images=../shared/datasets/benchmark/Set5 --keep_checkpoints

It appends Set5 PSNR at each scale to `<model_dir>/sidecar_log.csv` for every
new checkpoint, and stops once none has appeared for --idle_timeout_s (or at
once with --once). `python -m training.plot_curves --runs=phase3=<model_dir>
--metric=val_psnr_x2` draws the log; `python -m training.export
--model_dir=<model_dir> --weights=<model_dir>/sidecar/step...weights.h5`
exports a kept checkpoint.
"""

import sys

from absl import app, flags

from training.flag_values import int_list

FLAGS = flags.FLAGS

flags.DEFINE_string("model_dir", None, "Run folder (config.json, state.json) of training.jax_main or training.main.")
flags.DEFINE_string("images", None, "Folder of HR validation images (e.g. ../shared/datasets/benchmark/Set5).")
flags.DEFINE_list("scales", ["2", "3", "4"], "Scales to score.")
flags.DEFINE_bool("keep_checkpoints", False, "Copy each scored checkpoint to <model_dir>/sidecar/.")
flags.DEFINE_bool("once", False, "Score the latest checkpoint (if not yet scored) and exit.")
flags.DEFINE_float("poll_seconds", 30.0, "Seconds between looks at state.json.")
flags.DEFINE_float("idle_timeout_s", 1800.0, "Stop once no new checkpoint has appeared for this long.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    import pathlib

    from cmsc_tf.io import image_sets
    from training import sidecar_lib

    try:
        scales = int_list("scales", FLAGS.scales)
        folder = pathlib.Path(FLAGS.images)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such image folder")
        images = image_sets.list_images(folder)
        if FLAGS.once:
            sidecar_lib.score_latest(FLAGS.model_dir, images, scales, FLAGS.keep_checkpoints)
        else:
            sidecar_lib.watch(FLAGS.model_dir, images, scales, FLAGS.keep_checkpoints,
                              FLAGS.poll_seconds, FLAGS.idle_timeout_s)
    except (OSError, ValueError) as error:
        sys.exit(f"error: {error}")
    print(f"log: {pathlib.Path(FLAGS.model_dir) / sidecar_lib.LOG_FILE}")


if __name__ == "__main__":
    flags.mark_flags_as_required(["model_dir", "images"])
    app.run(main)
