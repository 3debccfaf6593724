"""Packs the training images as uint8 luminance into one .npz for `training.jax_main`.

Runs where TensorFlow is (it reads the sets through the TFDS builders, like
`training.main`); the .npz then travels to a machine that has only JAX.

Usage:
  CMSC_DATA_DIR=../shared/datasets python -m training.pack_luminance \\
      --train_sets=t91,bsd200 --out=runs/luminance_291.npz
"""

import sys

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_list("train_sets", ["t91", "bsd200"], "Training image sets, concatenated.")
flags.DEFINE_string("data_dir", None, "Datasets folder (layout of shared/datasets); "
                    "default $CMSC_DATA_DIR, else the scikit-image photos.")
flags.DEFINE_string("tfds_dir", None, "Where TFDS stores prepared sets (default ~/tensorflow_datasets).")
flags.DEFINE_string("out", "runs/luminance.npz", "The .npz to write.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from training import jax_lib, train_lib

    try:
        images = train_lib.load_training_images(FLAGS.train_sets, FLAGS.data_dir or "", FLAGS.tfds_dir or "")
        path = jax_lib.save_luminance(FLAGS.out, [y for _, y in images], [name for name, _ in images])
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"error: {error}")
    pixels = sum(y.size for _, y in images)
    print(f"wrote {path}: {len(images)} images, {pixels / 1e6:.1f} M pixels")


if __name__ == "__main__":
    app.run(main)
