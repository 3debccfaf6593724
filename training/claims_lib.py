"""The arms of the small-scale claims studies and how to run and summarise them.

Flag-free; `python -m training.claims` is the command line over it.
"""

import csv
import subprocess
import sys

# study -> [(arm label, variant, model overrides)]
_FEATURES = "num_features=16,reconstruction_initializer=zeros"
STUDIES = {
    "fig5": [
        ("MSC_L3R5", "msc_l3r5", _FEATURES),
        ("MSC_L3R7", "msc_l3r7", _FEATURES),
        ("MR_L3R3", "mr_l3r3", _FEATURES),
        ("MR_L5R5", "mr_l5r5", _FEATURES),
        # conv + 8 convs + conv: the depth of conv + 4 two-layer modules + conv.
        ("VDSR-style", "vdsr", _FEATURES + ",num_modules=8"),
    ],
    "cascade": [
        ("CMSC", "cmsc", _FEATURES + ",num_stages=2,num_modules=2"),
        ("CMSC_SR", "cmsc_sr", _FEATURES + ",num_stages=2,num_modules=2"),
        ("CMSC_NS", "cmsc_ns", _FEATURES + ",num_stages=2,num_modules=2"),
        ("CMSC_NRS", "cmsc_nrs", _FEATURES + ",num_stages=2,num_modules=2"),
        ("PMSC", "pmsc", _FEATURES + ",num_modules=4"),
    ],
}


def train_arm(variant, overrides, model_dir, common_flagfile, extra=()):
    """Runs (or resumes) one arm as its own `training.main` process."""
    command = [sys.executable, "-m", "training.main", f"--flagfile={common_flagfile}",
               f"--variant={variant}", f"--model_overrides={overrides}",
               f"--model_dir={model_dir}", *(f"--{item}" for item in extra)]
    result = subprocess.run(command, check=False)
    if result.returncode:
        raise RuntimeError(f"arm {model_dir} failed (exit {result.returncode}): {' '.join(command)}")


def build_arm(variant, overrides):
    """The arm's model, as `training.main --variant --model_overrides` builds it."""
    from cmsc_tf import build_model
    from training.flag_values import parse_overrides

    return build_model(variant, **parse_overrides(overrides.split(",")))


def summary_rows(arms, runs_dir):
    """[(label, params, {scale: (best, final)})] from each arm's training_log.csv."""
    rows = []
    for label, variant, overrides in arms:
        with open(runs_dir / label / "training_log.csv", newline="") as f:
            log = list(csv.DictReader(f))
        scales = sorted(int(k.rsplit("x", 1)[1]) for k in log[0] if k.startswith("val_psnr_x"))
        psnr = {s: (max(float(r[f"val_psnr_x{s}"]) for r in log), float(log[-1][f"val_psnr_x{s}"]))
                for s in scales}
        rows.append((label, build_arm(variant, overrides).count_params(), psnr))
    return rows


def markdown_table(rows):
    scales = sorted(rows[0][2])
    head = "| arm | parameters | " + " | ".join(f"x{s} final (best)" for s in scales) + " |"
    lines = [head, "|" + " --- |" * (2 + len(scales))]
    for label, params, psnr in rows:
        cells = " | ".join(f"{psnr[s][1]:.2f} ({psnr[s][0]:.2f})" for s in scales)
        lines.append(f"| {label} | {params:,} | {cells} |")
    return "\n".join(lines)
