"""Validation of a run's checkpoints by a second process (a sidecar evaluator).

`training.jax_main` validates nothing while it trains: it runs where
TensorFlow and the benchmark images may be missing, and on a 2-core CPU
every second of validation is a second less of training. This scores each
checkpoint the run writes, in another process (here, or on another machine
that sees the folder), with the paper's protocol: PSNR on the luminance of
the HR images of one folder (Set5), at each scale. One row per checkpoint is
appended to `sidecar_log.csv` in the run folder (`epoch`, `step`,
`val_psnr_x2`, ...), where `training.plot_curves` finds it.

The trainer keeps only its latest checkpoint; with `keep=True` each scored
checkpoint is also copied to `<run>/sidecar/`, so the best one can be
exported later. Flag-free; `training.sidecar_eval` is the command.
"""

import csv
import pathlib
import shutil
import time

from cmsc_tf.deploy import loader
from cmsc_tf.eval import benchmark
from training import checkpointing, curves

LOG_FILE = "sidecar_log.csv"
KEPT_DIR = "sidecar"


def checkpoint_step(state):
    """The training step a state.json describes (counted steps where the trainer records them)."""
    if "steps_done" in state:
        return int(state["steps_done"])
    return int(state["epoch"]) * int(state.get("steps_per_epoch") or 0) + int(state.get("step", 0))


def scored_steps(model_dir):
    """Steps already in the run's sidecar log."""
    path = pathlib.Path(model_dir) / LOG_FILE
    if not path.is_file():
        return set()
    with open(path, newline="") as handle:
        return {int(row["step"]) for row in csv.DictReader(handle)}


def score_latest(model_dir, image_paths, scales=(2, 3, 4), keep=False):
    """Scores the run's latest checkpoint unless its step is in the log; returns the new row or None.

    The weights file is copied before it is read: the trainer deletes a
    checkpoint once a newer one exists, and may do so mid-read.
    """
    model_dir = pathlib.Path(model_dir)
    if not image_paths:
        raise ValueError("no validation images given")
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{model_dir}: not a training run folder (no config.json)")
    try:
        state = checkpointing.read_state(model_dir)
    except FileNotFoundError:
        return None  # state.json is being replaced: the next poll sees the new checkpoint
    if state is None:
        return None
    step = checkpoint_step(state)
    if step in scored_steps(model_dir):
        return None
    kept = model_dir / KEPT_DIR
    kept.mkdir(exist_ok=True)
    copy = kept / f"step{step:08d}.weights.h5"
    try:
        shutil.copyfile(model_dir / state["weights"], copy)
    except FileNotFoundError:
        return None
    try:
        model, _ = checkpointing.build_from_run(model_dir, copy)
    finally:
        if not keep:
            copy.unlink()
    predict = loader.keras_predictor(model)
    row = {"epoch": int(state["epoch"]), "step": step, "weights": copy.name if keep else ""}
    for scale in scales:
        result = benchmark.evaluate_set(predict, image_paths, scale, metrics=("psnr",))
        row[f"val_psnr_x{scale}"] = result["psnr"]
    curves.append_row(model_dir / LOG_FILE, row)
    return row


def watch(model_dir, image_paths, scales=(2, 3, 4), keep=False, poll_seconds=30.0, idle_timeout_s=1800.0,
          clock=time.monotonic, sleep=time.sleep, report=print):
    """Scores each new checkpoint until none has appeared for `idle_timeout_s`; returns the rows."""
    rows, last_new = [], clock()
    while True:
        row = score_latest(model_dir, image_paths, scales, keep)
        if row is not None:
            rows.append(row)
            last_new = clock()
            report(", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
        elif clock() - last_new >= idle_timeout_s:
            return rows
        else:
            sleep(poll_seconds)
