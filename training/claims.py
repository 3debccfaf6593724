"""The paper's two central claims, measured at a small scale with equal budgets.

Usage (from the repository root; rerunning resumes unfinished arms):

    CMSC_DATA_DIR=../shared/datasets python -m training.claims --study=fig5
    CMSC_DATA_DIR=../shared/datasets python -m training.claims --study=cascade

- `fig5` (the paper's Fig. 5): basic nets of 4 stacked modules, multi-scale
  cross (MSC_L3R5, MSC_L3R7) against merge-and-run (MR_L3R3, MR_L5R5), and a
  plain VDSR-style stack of 3x3 convolutions of the same depth (10 layers).
- `cascade` (Tables I and II): CMSC (S=2 stages of M=2 modules, residual-
  features learning, cascaded supervision) against the plain stack of the same
  4 modules (PMSC), and the ablations CMSC_NS (no cascaded supervision),
  CMSC_NRS (no supervision, no RFL skip) and CMSC_SR (one shared reconstruction).

Every arm is one `training.main` run with `training/claims.flags` (same data,
seed, steps, optimizer), in `<runs_dir>/<study>/<arm>/`. At the end the script
prints a Markdown table (parameters, best and final Set5 validation PSNR per
scale) and draws PSNR against training step to `--plot` (default
`docs/claims_<study>.png`).
"""

import pathlib
import sys

from absl import app, flags

from training.claims_lib import STUDIES, markdown_table, summary_rows, train_arm

FLAGS = flags.FLAGS

flags.DEFINE_enum("study", "fig5", sorted(STUDIES), "Which claim to measure.")
flags.DEFINE_string("runs_dir", "runs/claims", "Run folders go to <runs_dir>/<study>/<arm>.")
flags.DEFINE_string("flagfile_common", "training/claims.flags", "Flags shared by every arm.")
flags.DEFINE_multi_string(
    "extra", [], "A training.main flag for every arm, without its dashes (repeatable): "
    "--extra=epochs=2 --extra=scales=2,3.")
flags.DEFINE_list("arms", [], "Only these arm labels (default: all of the study).")
flags.DEFINE_string("metric", "val_psnr_x2", "Plotted column of training_log.csv.")
flags.DEFINE_string("plot", "", "PNG to write (default docs/claims_<study>.png).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    arms = STUDIES[FLAGS.study]
    if FLAGS.arms:
        unknown = set(FLAGS.arms) - {label for label, _, _ in arms}
        if unknown:
            raise app.UsageError(f"unknown arms for {FLAGS.study}: {', '.join(sorted(unknown))}")
        arms = [arm for arm in arms if arm[0] in FLAGS.arms]
    runs_dir = pathlib.Path(FLAGS.runs_dir) / FLAGS.study
    for label, variant, overrides in arms:
        print(f"== {FLAGS.study}: {label} ({variant}, {overrides})", flush=True)
        try:
            train_arm(variant, overrides, runs_dir / label, FLAGS.flagfile_common, FLAGS.extra)
        except RuntimeError as error:
            sys.exit(f"error: {error}")

    from training import curves as training_curves

    curves = {label: training_curves.read_curve(runs_dir / label, FLAGS.metric) for label, _, _ in arms}
    out = FLAGS.plot or f"docs/claims_{FLAGS.study}.png"
    val_set = training_curves.run_val_set(runs_dir / arms[0][0])
    training_curves.plot(curves, FLAGS.metric, out, title=f"{FLAGS.study}: equal budgets", val_set=val_set)
    print(markdown_table(summary_rows(arms, runs_dir)))
    print(f"wrote {out}")


if __name__ == "__main__":
    app.run(main)
