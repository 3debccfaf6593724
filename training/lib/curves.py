"""Training curves: validation PSNR per step read from run folders, drawn as PNG.

Flag-free, so that `training.plot_curves` and `training.claims` share it.
"""

import csv
import io
import json
import pathlib
import re

from cmsc_tf.io import atomic
from training.lib.checkpointing import CONFIG_FILE, LOG_FILE


# A run's log: a row per report point (step, epoch, seconds, every value).


def append_row(path, row):
    """Appends `row` ({column: value}) to the CSV log at `path`, under its header.

    A row with columns the log does not have yet (a first epoch without
    validation, a phase with more stages or scales) rewrites the log
    atomically with every column, the old rows' new cells empty.
    """
    path = pathlib.Path(path)
    rows = read_rows(path) if path.exists() else []
    columns = list(rows[0]) if rows else []
    if rows and not set(row) - set(columns):
        with open(path, "a", newline="") as handle:
            csv.DictWriter(handle, columns, restval="").writerow(row)
        return
    columns += [c for c in row if c not in columns]
    text = io.StringIO()
    writer = csv.DictWriter(text, columns, restval="")
    writer.writeheader()
    writer.writerows([*rows, row])
    atomic.write_text(path, text.getvalue())


def read_rows(path):
    """The rows ({column: text}) of the CSV log at `path`."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def read_curve(model_dir, metric, x="step"):
    """[(step, value)] of `metric` after each epoch (or scored checkpoint) of the run in `model_dir`;
    `x` names another column of the log to pair the values with instead (e.g. "seconds").

    The metric and the step are read from the run's `training_log.csv`.
    """
    model_dir = pathlib.Path(model_dir)
    log, config = model_dir / LOG_FILE, model_dir / CONFIG_FILE
    if not log.is_file() or not config.is_file():
        raise FileNotFoundError(f"{model_dir}: not a training run folder (needs {CONFIG_FILE} and {LOG_FILE})")
    rows = read_rows(log)
    if rows and metric not in rows[0]:
        raise ValueError(f"{model_dir}: no column {metric!r} in {LOG_FILE}; columns: {', '.join(sorted(rows[0]))}")
    rows = [row for row in rows if row.get(metric)]  # a cell is empty where an epoch lacked the column
    return [(float(row[x]) if x != "step" else int(row[x]), float(row[metric])) for row in rows]


def stretch_means(curve, bounds):
    """Mean value of `curve` ([(step, value)]) over each stretch between
    consecutive `bounds` (ascending steps): the points with bounds[i] < step
    <= bounds[i + 1], the report after a stretch's last step included.

    A run at a constant rate is judged by such means rather than by single
    noisy validations (docs/results.md, the compact model's phases).
    """
    bounds = [int(b) for b in bounds]
    if len(bounds) < 2 or any(b >= c for b, c in zip(bounds, bounds[1:])):
        raise ValueError(f"stretch bounds must be two or more ascending steps, got {bounds}")
    means = []
    for low, high in zip(bounds, bounds[1:]):
        values = [value for step, value in curve if low < step <= high]
        if not values:
            raise ValueError(f"no report point in the stretch of steps {low} to {high}")
        means.append(sum(values) / len(values))
    return means


# Display names of validation sets (config.json's val_set) for axis labels.
SET_NAMES = {"set5": "Set5", "set14": "Set14", "bsd100": "BSD100", "urban100": "Urban100",
             "sunhays80": "SunHays80 crops", "skimage": "skimage test photos", "skimage_test": "skimage test photos"}


def run_val_set(model_dir):
    """The run's validation set (config.json's val_set), or None."""
    config = pathlib.Path(model_dir) / CONFIG_FILE
    return json.loads(config.read_text()).get("val_set") if config.is_file() else None


def column_label(metric):
    """The legend name of a column: "x3" for val_psnr_x3 / val_gain_x3, else the column."""
    match = re.fullmatch(r"val_(?:psnr|gain|ssim)_(x\d+)", metric)
    return match.group(1) if match else metric


def axis_label(metrics, val_set=None):
    """A readable y label with units for one column or a list of columns of one kind.

    val_psnr* -> "Set5 PSNR (dB)", val_gain* -> "Set5 PSNR gain over bicubic (dB)",
    val_ssim* -> "Set5 SSIM", a loss -> "loss"; anything else the column names.
    """
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    where = SET_NAMES.get(val_set, val_set) if val_set else "validation"
    kinds = {re.sub(r"_x\d+$", "", m) for m in metrics}
    if kinds == {"val_psnr"}:
        return f"{where} PSNR (dB)"
    if kinds == {"val_gain"}:
        return f"{where} PSNR gain over bicubic (dB)"
    if kinds == {"val_ssim"}:
        return f"{where} SSIM"
    if all(m == "loss" or m.endswith("_loss") for m in metrics):
        return "loss" if metrics == ["loss"] else ", ".join(metrics)
    return ", ".join(metrics)


def plot(curves, metric, out, title="", log_y=False, val_set=None):
    """Writes a PNG of `curves` ({label: [(step, value)]}) to `out` (log_y: logarithmic y axis).

    `metric` is the column or list of columns drawn, `val_set` the validation
    set they were measured on (config.json's val_set), for the y label.
    Returns {"x": x label, "y": y label, "legend": [line labels]}.
    """
    return plot_panels([(metric, curves, log_y)], out, title, val_set)[0]


def plot_panels(panels, out, title="", val_set=None, y_labels=None, x_label="training step"):
    """Writes one PNG with a panel per (metric, {label: [(step, value)]}, log_y) of `panels`, side by side.

    `y_labels` ({metric: label}) replaces the derived label of a metric.
    Returns, per panel, {"x": x label, "y": y label, "legend": [line labels]}.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, all_axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    labels = []
    for axes, (metric, curves, log_y) in zip(all_axes[0], panels):
        for label, points in curves.items():
            axes.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
        axes.set_xlabel(x_label)
        custom = (y_labels or {}).get(metric) if isinstance(metric, str) else None
        axes.set_ylabel(custom or axis_label(metric, val_set))
        if log_y:
            axes.set_yscale("log")
        axes.set_title(title if len(panels) == 1 else column_label(str(metric)))
        axes.grid(alpha=0.3)
        legend = axes.legend()
        labels.append({"x": axes.get_xlabel(), "y": axes.get_ylabel(),
                       "legend": [text.get_text() for text in legend.get_texts()]})
    if len(panels) > 1 and title:
        figure.suptitle(title)
    figure.tight_layout()
    with atomic.atomic_path(out) as temporary:
        figure.savefig(temporary, format="png", dpi=120)
    plt.close(figure)
    return labels
