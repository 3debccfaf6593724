"""Small studies with equal budgets: the paper's two central claims, and which clipping trains.

Usage (from the repository root; rerunning resumes unfinished arms):

    CMSC_DATA_DIR=../shared/datasets python -m training.claims --study=fig5
    CMSC_DATA_DIR=../shared/datasets python -m training.claims --study=cascade
    CMSC_DATA_DIR=../shared/datasets python -m training.claims --study=clipping
    CMSC_DATA_DIR=../shared/datasets python -m training.claims --study=recipe

- `fig5` (the paper's Fig. 5): basic nets of 4 stacked modules, multi-scale
  cross (MSC_L3R5, MSC_L3R7) against merge-and-run (MR_L3R3, MR_L5R5), and a
  plain VDSR-style stack of 3x3 convolutions of the same depth (10 layers).
- `cascade` (Tables I and II): CMSC (S=2 stages of M=2 modules, residual-
  features learning, cascaded supervision) against the plain stack of the same
  4 modules (PMSC), and the ablations CMSC_NS (no cascaded supervision),
  CMSC_NRS (no supervision, no RFL skip) and CMSC_SR (one shared reconstruction).
- `clipping` (Sec. IV-B): the paper's recipe (cmsc.flags, full CMSC, SGD at
  lr 0.1) under four readings of its gradient clipping: each element to
  +-0.4, the global norm to 0.4, VDSR's adjustable +-0.4/lr, and each element
  to +-0.4 with the loss averaged over the pixels (docs/training.md).
- `recipe` (issue 22): the compact CMSC's training recipe against one change
  at a time (L1 loss, 64x64 and 96x96 crops at the same pixels per step,
  cosine decay, bfloat16 mixed precision, batch 16), each arm from the same
  initial weights for the same CPU seconds, validated on SunHays80 crops
  (training/flags/recipe.flags; docs/results.md). Curves against CPU seconds.

Every arm is one `training.main` run with the study's flag files (same data,
seed, steps), in `<runs_dir>/<study>/<arm>/`. An arm that stops on a NaN
loss is a result, not a failure of the study: the others still run. At the
end the script prints a Markdown table (parameters, steps trained, best and
final validation PSNR per scale) and draws the study's columns against
training step to `--plot` (default `docs/claims_<study>.png`).
"""

import pathlib
import sys

from absl import app, flags

from cmsc_tf import entry
from training.lib.checkpointing import LOG_FILE
from training.lib.studies import STUDIES, ArmFailed, markdown_table, summary_rows, summed_loss_curve, train_arm

FLAGS = flags.FLAGS

flags.DEFINE_enum("study", "fig5", sorted(STUDIES), "Which study to run.")
flags.DEFINE_string("runs_dir", "runs/claims", "Run folders go to <runs_dir>/<study>/<arm>.")
flags.DEFINE_multi_string(
    "extra", [], "A training.main flag for every arm, without its dashes (repeatable): "
    "--extra=epochs=2 --extra=scales=2,3.")
flags.DEFINE_list("arms", [], "Only these arm labels (default: all of the study).")
flags.DEFINE_list("metric", [], "Plotted columns of training_log.csv, a panel each (default: the study's).")
flags.DEFINE_bool("plot_only", False, "Train nothing: summarise and plot the runs already in --runs_dir.")
flags.DEFINE_string("plot", "", "PNG to write (default docs/claims_<study>.png).")

LOSS_LABEL = "training loss (summed over a patch)"
X_LABELS = {"step": "training step", "seconds": "training seconds (the run's budget clock)"}


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    study = STUDIES[FLAGS.study]
    arms = study.arms
    if FLAGS.arms:
        unknown = set(FLAGS.arms) - {arm.label for arm in arms}
        if unknown:
            raise app.UsageError(f"unknown arms for {FLAGS.study}: {', '.join(sorted(unknown))}")
        arms = [arm for arm in arms if arm.label in FLAGS.arms]
    runs_dir = pathlib.Path(FLAGS.runs_dir) / FLAGS.study
    extra = [*FLAGS.extra, *(["tf_log"] if FLAGS.tf_log else [])]  # each arm is quiet as this run is
    failed = {}
    for arm in arms if not FLAGS.plot_only else ():
        print(f"== {FLAGS.study}: {arm.label} ({arm.variant} {arm.overrides} {' '.join(arm.flags)})", flush=True)
        try:
            train_arm(study, arm, runs_dir / arm.label, extra)
        except ArmFailed as error:
            failed[arm.label] = str(error)
            print(f"== {arm.label} stopped: {error}", file=sys.stderr, flush=True)

    from training.lib import curves as training_curves

    entry.load("keras", "tensorflow")  # (the summary builds the arms' models)

    present = [arm for arm in arms if (runs_dir / arm.label / LOG_FILE).is_file()]
    if not present:
        sys.exit(f"error: no arm of {FLAGS.study} in {runs_dir} has a training log")
    panels = []
    for metric in FLAGS.metric or study.metrics:
        if metric == "loss":
            panels.append((metric, {arm.label: summed_loss_curve(runs_dir / arm.label) for arm in present}, True))
        else:
            panels.append((metric, {arm.label: _curve(training_curves, runs_dir / arm.label, metric, study.x)
                                    for arm in present}, False))
    out = FLAGS.plot or f"docs/claims_{FLAGS.study}.png"
    val_set = training_curves.run_val_set(runs_dir / present[0].label)
    training_curves.plot_panels(panels, out, title=f"{FLAGS.study}: {study.title}", val_set=val_set,
                                y_labels={"loss": LOSS_LABEL}, x_label=X_LABELS.get(study.x, study.x))
    print(markdown_table(summary_rows(present, runs_dir)))
    for label, why in failed.items():
        print(f"{label}: {why}")
    print(f"wrote {out}")


def _curve(training_curves, model_dir, metric, x="step"):
    try:
        return training_curves.read_curve(model_dir, metric, x)
    except ValueError:  # an arm that diverged before its first validation
        return []


if __name__ == "__main__":
    entry.run(main, "training.claims", interrupted="rerun the same command to resume the unfinished arms")
