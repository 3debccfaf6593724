"""``cmsc-export``: exports a .keras model or a preset, or a training run's latest checkpoint (the one its
state.json names, or --weights).

Usage (``cmsc-export`` where the package is installed; ``python -m training.export``
in a checkout, the same command):

    cmsc-export --keras_model=cmsc_compact --export_prefix=runs/export/cmsc_compact \\
        --formats=tflite_rgb_float16
    python -m training.export --model_dir=checkpoints/cmsc_compact \\
        --export_prefix=savedmodels/cmsc_compact --formats=tflite_float16
    python -m training.export --keras_model=savedmodels/cmsc_full.keras \\
        --export_prefix=runs/export/cmsc_full --formats=tflite_float16
    python -m training.export --model_dir=runs/cmsc \\
        --weights=ckpt-e0010-s000231590.weights.h5 --export_prefix=runs/export/epoch10

Training exports by itself when it finishes (on a backend other than
TensorFlow, the .keras file only); this exports a run that is still going,
was stopped, or trained elsewhere (a GPU machine with JAX), or adds a format.
The model is rebuilt from the run's config.json (variant and overrides).
Formats: keras (`<export_prefix>.keras`), saved_model (`<export_prefix>/<next
version>/`, TF-Serving layout), tflite_float16 / tflite_float32 /
tflite_dynamic_int8 (the bare network, `<export_prefix>_<variant>.tflite`),
tflite_rgb_float16 / tflite_rgb_float32 / tflite_rgb_dynamic_int8 (self-contained:
uint8 RGB + scale in, uint8 RGB out; `<export_prefix>_rgb_<variant>.tflite`).
A run folder (--model_dir) is read with the checkout's training/ package, so only
``python -m training.export`` takes one.
TensorFlow's C++ start-up lines are hidden unless --tf_log (cmsc_tf/entry.py).
"""

from absl import app, flags

from cmsc_tf import entry

FLAGS = flags.FLAGS

flags.DEFINE_string("model_dir", None, "Run folder of training.main (state.json, config.json).")
flags.DEFINE_string("weights", None, "With --model_dir: this weights file of the run instead of its latest "
                    "(e.g. the checkpoint of an earlier epoch, kept by --keep_epoch_checkpoints).")
flags.DEFINE_string("keras_model", None, "A .keras model or a preset name (cmsc_compact, cmsc_full, vdsr) "
                    "to export instead of a run (needs --export_prefix).")
flags.DEFINE_string("export_prefix", None, "Path prefix of the exported files (default: the run's --export_prefix).")
flags.DEFINE_list("formats", ["keras", "saved_model", "tflite_float16", "tflite_dynamic_int8", "tflite_rgb_float16"],  # DEFAULT_FORMATS
                  "What to write (any of cmsc_tf.deploy.export.EXPORT_FORMATS).")


def main(argv, export_run=None):
    """`export_run(model_dir, export_prefix, formats, weights)` exports a training run: the checkout's
    ``training.lib.checkpointing.export_checkpoint``, which ``python -m training.export`` passes (the
    library does not import the checkout's training package)."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if (FLAGS.model_dir is None) == (FLAGS.keras_model is None):
        raise app.UsageError("give exactly one of --model_dir and --keras_model")
    if FLAGS.model_dir and export_run is None:
        raise app.UsageError("a training run (--model_dir) is exported from the git checkout with "
                             "python -m training.export; cmsc-export exports a .keras file or a preset "
                             "(--keras_model)")
    if FLAGS.weights and not FLAGS.model_dir:
        raise app.UsageError("--weights needs --model_dir")
    if FLAGS.keras_model and not FLAGS.export_prefix:
        raise app.UsageError("--keras_model needs --export_prefix")
    # After the flags: --help and usage errors answer at once. TensorFlow too
    # where installed, on any backend: Keras's saving loads it anyway.
    entry.load("keras", "tensorflow")
    try:
        from cmsc_tf.deploy import export as export_lib

        if FLAGS.keras_model:
            written = export_lib.export_keras_file(FLAGS.keras_model, FLAGS.export_prefix, FLAGS.formats)
        else:
            written = export_run(FLAGS.model_dir, FLAGS.export_prefix, FLAGS.formats, FLAGS.weights)
    except (OSError, ValueError) as error:
        raise entry.CommandError(str(error)) from None
    for name, path in written.items():
        print(f"{name}: {path}")


def run():
    """Console-script entry point (setup.py: ``cmsc-export``)."""
    entry.run(main, "cmsc-export", flags_module=__name__)
