"""The studies of `python -m training.claims`: their arms, and how to run and summarise them.

Flag-free; `python -m training.claims` is the command line over it. A study
is a set of arms trained by `training.main` with the same flag files (same
data, seed and steps); an arm differs from the others only by the flags it
names.
"""

import collections
import json
import math
import pathlib
import subprocess
import sys

from training.lib.checkpointing import CONFIG_FILE, LOG_FILE

# label, the model (variant + overrides, as training.main's flags), and any other
# training.main flags of the arm (without dashes).
Arm = collections.namedtuple("Arm", "label variant overrides flags", defaults=((),))
# flagfiles: training.main --flagfile of every arm, in order (later ones override);
# metrics: the columns of training_log.csv plotted, one panel each; title: the figure's;
# x: the log column the curves are drawn against ("step", or "seconds" for equal-time arms).
Study = collections.namedtuple("Study", "flagfiles arms metrics title x",
                               defaults=("equal budgets", "step"))

_FEATURES = "num_features=16,reconstruction_initializer=zeros"
_CLIPPING = ("clip_threshold=0.4",)
_COMPACT = "num_features=32,num_stages=2,num_modules=2,reconstruction_initializer=zeros"
STUDIES = {
    # The paper's Fig. 5: multi-scale cross against merge-and-run and a plain stack.
    "fig5": Study(("training/flags/claims.flags",), [
        Arm("MSC_L3R5", "msc_l3r5", _FEATURES),
        Arm("MSC_L3R7", "msc_l3r7", _FEATURES),
        Arm("MR_L3R3", "mr_l3r3", _FEATURES),
        Arm("MR_L5R5", "mr_l5r5", _FEATURES),
        # conv + 8 convs + conv: the depth of conv + 4 two-layer modules + conv.
        Arm("VDSR-style", "vdsr", _FEATURES + ",num_modules=8"),
    ], ("val_psnr_x2",)),
    # Tables I and II: cascaded supervision and residual-features learning.
    "cascade": Study(("training/flags/claims.flags",), [
        Arm("CMSC", "cmsc", _FEATURES + ",num_stages=2,num_modules=2"),
        Arm("CMSC_SR", "cmsc_sr", _FEATURES + ",num_stages=2,num_modules=2"),
        Arm("CMSC_NS", "cmsc_ns", _FEATURES + ",num_stages=2,num_modules=2"),
        Arm("CMSC_NRS", "cmsc_nrs", _FEATURES + ",num_stages=2,num_modules=2"),
        Arm("PMSC", "pmsc", _FEATURES + ",num_modules=4"),
    ], ("val_psnr_x2",)),
    # Sec. IV-B's "clip individual gradients to [-0.4, 0.4]", four readings, each with
    # the paper's full CMSC, data, SGD and schedule (cmsc.flags); docs/training.md.
    "clipping": Study(("cmsc.flags", "training/flags/clipping.flags"), [
        Arm("value", "cmsc", "", ("clip=value", *_CLIPPING)),
        Arm("global_norm", "cmsc", "", ("clip=global_norm", *_CLIPPING)),
        Arm("mean_loss", "cmsc", "", ("clip=value", *_CLIPPING, "loss_pixel_reduction=mean")),
        Arm("adjustable", "cmsc", "", ("clip=adjustable", *_CLIPPING)),
    ], ("loss", "val_psnr_x2", "val_psnr_x3", "val_psnr_x4"),
        "the paper's recipe under four readings of its clipping (diverged arms stopped)"),
    # Issue 22: the recipe that buys the compact CMSC the most SunHays80 dB per CPU
    # second; each arm changes one thing of the baseline (training/flags/recipe.flags).
    # The crop arms keep the pixels per step (41^2 x 32 ~ 64^2 x 13 ~ 96^2 x 6).
    "recipe": Study(("training/flags/recipe.flags",), [
        Arm("baseline", "cmsc", _COMPACT),
        Arm("l1", "cmsc", _COMPACT, ("loss_norm=l1",)),
        Arm("crop64", "cmsc", _COMPACT, ("patch_size=64", "batch_size=13")),
        Arm("cosine", "cmsc", _COMPACT, ("lr_schedule=cosine", "decay_at_budget_fraction=0")),
        Arm("bf16", "cmsc", _COMPACT, ("dtype_policy=mixed_bfloat16",)),
        Arm("batch16", "cmsc", _COMPACT, ("batch_size=16",)),
        Arm("crop96", "cmsc", _COMPACT, ("patch_size=96", "batch_size=6")),
        Arm("ema", "cmsc", _COMPACT, ("ema_momentum=0.999",)),
    ], ("val_psnr_x2", "val_psnr_x3", "val_psnr_x4"),
        "the compact CMSC's recipe, one change an arm, equal CPU seconds", "seconds"),
}


class ArmFailed(RuntimeError):
    """An arm's training.main exited with an error (a NaN loss is a result of the study)."""


def train_arm(study, arm, model_dir, extra=()):
    """Runs (or resumes) one arm as its own `training.main` process."""
    command = [sys.executable, "-m", "training.main",
               *(f"--flagfile={flagfile}" for flagfile in study.flagfiles),
               f"--variant={arm.variant}", f"--model_overrides={arm.overrides}",
               f"--model_dir={model_dir}", *(f"--{item}" for item in (*arm.flags, *extra))]
    result = subprocess.run(command, check=False)
    if result.returncode:
        raise ArmFailed(f"arm {model_dir} failed (exit {result.returncode}): {' '.join(command)}")


def build_arm(arm):
    """The arm's model, as `training.main --variant --model_overrides` builds it."""
    from cmsc_tf import build_model
    from training.lib.flag_values import parse_overrides

    return build_model(arm.variant, **parse_overrides([o for o in arm.overrides.split(",") if o]))


def run_parameters(model_dir):
    """The parameter count of the model a run trained (its config.json's variant and overrides)."""
    from training.lib.checkpointing import model_of_run

    return model_of_run(model_dir)[0].count_params()


def read_log(model_dir):
    """The rows of a run's training_log.csv ([] when it wrote none)."""
    from training.lib.curves import read_rows

    path = pathlib.Path(model_dir) / LOG_FILE
    return read_rows(path) if path.is_file() else []


def summed_loss_curve(model_dir):
    """[(step, epoch-mean training loss)] with the squared error summed over a patch's pixels.

    A run with --loss_pixel_reduction=mean logs a loss divided by the patch
    area; it is multiplied back, so that the arms of one study compare.
    """
    config = json.loads((pathlib.Path(model_dir) / CONFIG_FILE).read_text())
    factor = config["patch_size"] ** 2 if config.get("loss_pixel_reduction") == "mean" else 1
    return [(int(row["step"]), float(row["loss"]) * factor) for row in read_log(model_dir) if row.get("loss")]


def summary_rows(arms, runs_dir):
    """[(label, params, {scale: (best, final)}, steps trained)] from each arm's training_log.csv.

    Best ignores non-finite values (a diverged arm's PSNR is NaN); an arm
    without a logged epoch has no scales.
    """
    rows = []
    for arm in arms:
        log = read_log(runs_dir / arm.label)
        scales = sorted(int(k.rsplit("x", 1)[1]) for k in (log[0] if log else {}) if k.startswith("val_psnr_x"))
        psnr = {}
        for s in scales:
            values = [float(r[f"val_psnr_x{s}"]) for r in log if r.get(f"val_psnr_x{s}")]
            finite = [v for v in values if math.isfinite(v)]
            psnr[s] = (max(finite) if finite else math.nan, values[-1] if values else math.nan)
        rows.append((arm.label, run_parameters(runs_dir / arm.label), psnr, int(log[-1]["step"]) if log else 0))
    return rows


def markdown_table(rows):
    scales = sorted({s for row in rows for s in row[2]})
    head = "| arm | parameters | steps | " + " | ".join(f"x{s} final (best)" for s in scales) + " |"
    lines = [head, "|" + " --- |" * (3 + len(scales))]
    for label, params, psnr, steps in rows:
        cells = " | ".join(f"{psnr[s][1]:.2f} ({psnr[s][0]:.2f})" if s in psnr else "-" for s in scales)
        lines.append(f"| {label} | {params:,} | {steps:,} | {cells} |")
    return "\n".join(lines)
