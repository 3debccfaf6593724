"""``cmsc-evaluate``: evaluates a super-resolution model on the benchmark sets with the paper's protocol.

Usage (``cmsc-evaluate`` where the package is installed; ``python -m training.evaluate``
in a checkout, the same command):
  cmsc-evaluate --model=bicubic|PRESET|MODEL.keras|MODEL.tflite|SAVED_MODEL_DIR \
      [--data_dir=../shared/datasets/benchmark] [--datasets=Set5,Set14,BSD100,Urban100] \
      [--scales=2,3,4] [--metrics=psnr,ssim,ifc] [--save_images=DIR] [--output_json=PATH] \
      [--compare=Bicubic,SRCNN]

Prints a Table III style table (mean PSNR / SSIM / IFC per set and scale, on
the luminance channel, model output clipped to [0, 1]); see docs/evaluation.md.
Without --data_dir or $CMSC_DATA_DIR it evaluates the scikit-image photographs
(set name "skimage") instead of the benchmark sets. TensorFlow's C++ start-up
lines are hidden unless --tf_log (cmsc_tf/entry.py).
"""

import os
import tempfile

from absl import app, flags

from cmsc_tf import entry

FLAGS = flags.FLAGS
flags.DEFINE_string("model", "bicubic", "'bicubic', a preset (cmsc_compact, cmsc_full, vdsr), a .keras or "
                    ".tflite file, or a SavedModel directory.")
flags.DEFINE_string(
    "data_dir",
    os.path.join(os.environ["CMSC_DATA_DIR"], "benchmark") if os.environ.get("CMSC_DATA_DIR") else None,
    "Folder with one subfolder of HR images per benchmark set (default: $CMSC_DATA_DIR/benchmark, "
    "else the scikit-image photographs).",
)
flags.DEFINE_list(
    "datasets",
    None,
    "Sets to evaluate; absent ones are skipped (default: Set5,Set14,BSD100,Urban100, or skimage without a data_dir).",
)
flags.DEFINE_list("scales", ["2", "3", "4"], "Integer upscaling factors.")
flags.DEFINE_list("metrics", ["psnr", "ssim", "ifc"], "Metrics: any of psnr, ssim, ifc.")
flags.DEFINE_string("save_images", None, "Folder for the colour SR images (model on Y, bicubic on Cb/Cr).")
flags.DEFINE_string("output_json", None, "Where to write the results as JSON.")
flags.DEFINE_list("compare", [], "Table III methods to print beside the model, e.g. Bicubic,SRCNN,CMSC "
                  "(the paper's published scores, cmsc_tf.eval.paper_table3).")


def main(argv):
    """Runs the evaluation; a usage error is one line on stderr and exit code 2 (cmsc_tf.entry)."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        scales = [int(s) for s in FLAGS.scales]
    except ValueError:
        raise app.UsageError(f"--scales must be integers, got {FLAGS.scales}") from None
    _check_outputs()
    # Loaded here so that --help and usage errors answer without TensorFlow.
    entry.load("keras", "tensorflow")
    from cmsc_tf.eval import benchmark
    from cmsc_tf.io import image_sets

    with tempfile.TemporaryDirectory() as embedded:
        if FLAGS.data_dir:
            data_dir, datasets = FLAGS.data_dir, FLAGS.datasets or list(benchmark.DEFAULT_DATASETS)
        else:
            data_dir = image_sets.write_embedded_benchmark(embedded)
            datasets = FLAGS.datasets or [image_sets.EMBEDDED_SET]
        _evaluate(data_dir, datasets, scales)


def _evaluate(data_dir, datasets, scales):
    """Loads the model, runs the benchmark, prints the table, writes the JSON."""
    from cmsc_tf.deploy import loader
    from cmsc_tf.eval import benchmark

    _check_compare()
    try:
        predictor = loader.load_predictor(FLAGS.model)
        results = benchmark.evaluate(
            predictor,
            data_dir,
            datasets=datasets,
            scales=scales,
            metrics=[m.lower() for m in FLAGS.metrics],
            save_images=FLAGS.save_images,
        )
    except (ValueError, OSError) as err:  # OSError: FileNotFoundError, unreadable files
        raise app.UsageError(str(err)) from None
    print(f"Model: {FLAGS.model}")
    print(benchmark.format_table(results, [m.lower() for m in FLAGS.metrics]))
    if FLAGS.compare:
        print(_comparison(results))
    if FLAGS.output_json:
        benchmark.write_json(results, FLAGS.output_json)
        print(f"Wrote {FLAGS.output_json}")


def _check_outputs():
    """Refuses outputs that cannot be written before minutes of work, not after."""
    from cmsc_tf.io import atomic

    for flag, path, check in (("--output_json", FLAGS.output_json, atomic.check_output_file),
                              ("--save_images", FLAGS.save_images, atomic.check_output_folder)):
        if path:
            try:
                check(path)
            except ValueError as error:
                raise app.UsageError(f"{flag}={path}: {error}") from None


def _check_compare():
    """Refuses unknown --compare methods before the evaluation runs."""
    from cmsc_tf.eval import paper_table3

    unknown = [name for name in FLAGS.compare if name not in paper_table3.METHODS]
    if unknown:
        raise app.UsageError(f"--compare: unknown methods {unknown}; Table III has {', '.join(paper_table3.METHODS)}")


def _comparison(results):
    """The measured rows beside the paper's rows of the --compare methods, Table III layout."""
    from cmsc_tf.eval import paper_table3

    measured = paper_table3.measured_scores(results)
    wanted = [m.lower() for m in FLAGS.metrics]
    metrics = [m for m in paper_table3.METRICS if m in wanted]
    rows = [(f"{name} (paper)", paper_table3.paper_scores(name)) for name in FLAGS.compare]
    return paper_table3.comparison_table([*rows, (f"{FLAGS.model} (measured)", measured)],
                                         metrics, columns=measured)


def run():
    """Console-script entry point (setup.py: ``cmsc-evaluate``)."""
    entry.run(main, "cmsc-evaluate", flags_module=__name__)
