"""Plots validation PSNR against training step for one or more runs.

Usage (from the repository root):

    python -m training.plot_curves --runs=MSC=runs/msc_l3r5,MR=runs/mr_l3r3 \\
        --metric=val_psnr_x3 --out=docs/fig5_small.png
    python -m training.plot_curves --runs=compact=checkpoints/cmsc_compact \\
        --metric=val_psnr_x2,val_psnr_x3,val_psnr_x4 --out=docs/compact_curve.png
    python -m training.plot_curves --runs=phase_8=checkpoints/cmsc_compact_phase8 \\
        --metric=val_psnr_x2 --stretches=118500,134000,149000,164500,175500 --out=/tmp/p8.png

Each run folder is a `--model_dir` of `training.main`: its `training_log.csv`
gives the metric and the global step of every report point, so the x axis is
the training step (equal-budget comparisons line up).
"""

from absl import app, flags

from cmsc_tf import entry
from training.lib.curves import column_label, plot, read_curve, run_val_set, stretch_means

FLAGS = flags.FLAGS

flags.DEFINE_list("runs", [], "label=model_dir pairs.")
flags.DEFINE_list("metric", ["val_psnr_x2"], "Columns of training_log.csv to plot (one line per run and column).")
flags.DEFINE_string("title", "", "Figure title.")
flags.DEFINE_bool("log_y", False, "Logarithmic y axis (losses that spike).")
flags.DEFINE_string("out", "curves.png", "PNG file to write.")
flags.DEFINE_list("stretches", [], "Ascending steps; also print each curve's mean over every stretch between "
                  "consecutive ones (report points after the lower step, up to and including the upper).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not FLAGS.runs:
        raise app.UsageError("--runs is empty")
    curves = {}
    for item in FLAGS.runs:
        label, sep, model_dir = item.partition("=")
        if not sep:
            raise app.UsageError(f"--runs takes label=model_dir pairs, got {item!r}")
        for metric in FLAGS.metric:
            if len(FLAGS.metric) == 1:
                name = label
            elif len(FLAGS.runs) == 1:
                name = column_label(metric)
            else:
                name = f"{label} {column_label(metric)}"
            try:
                curves[name] = read_curve(model_dir, metric)
            except (OSError, ValueError) as error:
                raise app.UsageError(str(error)) from None
    if FLAGS.stretches:
        print_stretch_means(curves, FLAGS.stretches)
    val_set = run_val_set(FLAGS.runs[0].partition("=")[2])
    plot(curves, FLAGS.metric, FLAGS.out, FLAGS.title, log_y=FLAGS.log_y, val_set=val_set)
    print(f"wrote {FLAGS.out}")


def print_stretch_means(curves, bounds):
    try:
        bounds = [int(b) for b in bounds]
        rows = {name: stretch_means(curve, bounds) for name, curve in curves.items()}
    except ValueError as error:
        raise app.UsageError(f"--stretches: {error}") from None
    print("| curve | " + " | ".join(f"steps {low} to {high}" for low, high in zip(bounds, bounds[1:])) + " |")
    print("| --- " * len(bounds) + "|")
    for name, means in rows.items():
        print(f"| {name} | " + " | ".join(f"{m:.3f}" for m in means) + " |")


if __name__ == "__main__":
    entry.run(main, "training.plot_curves")
