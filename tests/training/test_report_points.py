"""Report points: validation, the CSV log and TensorBoard at every epoch end and every N steps.

Keras's own TensorBoard callback counted batches per fit and wrote epoch
summaries only when the epoch length was a multiple of its update_freq; here
every report point is written at its global step, scalars and images alike.
"""

import csv

import numpy as np
import pytest

from training.lib import trainer
from training.lib.config import TrainConfig

tensorboard = pytest.importorskip("tensorboard")


def config(model_dir, **changes):
    base = dict(
        model_overrides=dict(num_features=8, num_stages=2, num_modules=1),
        train_sets=("skimage_train",), val_set="skimage_test", val_max_images=1, val_scales=(2, 3),
        pipeline="random_crop", scales=(2, 3), patch_size=21, batch_size=4, steps_per_epoch=5, epochs=2,
        optimizer="adam", learning_rate=1e-3, lr_decay_epochs=(1,), weight_decay=0.0, clip="none",
        model_dir=str(model_dir), export_prefix="", tensorboard=True, image_summaries=1, verbose=0,
        checkpoint_every_steps=0, eval_every_steps=2)
    base.update(changes)
    return TrainConfig(**base)


def read_events(folder):
    """{tag: [(step, value or None for an image)]} of every event file under `folder`."""
    from tensorboard.backend.event_processing import event_accumulator

    found = {}
    for path in sorted(folder.rglob("events.out.tfevents.*")):
        events = event_accumulator.EventAccumulator(str(path), size_guidance={"tensors": 0, "images": 0})
        events.Reload()
        for tag in events.Tags()["tensors"]:
            for event in events.Tensors(tag):
                value = np.asarray(tensorboard.util.tensor_util.make_ndarray(event.tensor_proto))
                found.setdefault(tag, []).append((event.step, float(value) if value.ndim == 0 else None))
    return found


def test_every_report_point_writes_validation_scalars_and_images_at_its_global_step(tmp_path):
    trainer.run(config(tmp_path))
    # Epochs of 5 steps, a report every 2 steps: 2, 4, 5 (epoch end), 6, 8, 10 (epoch end).
    points = [2, 4, 5, 6, 8, 10]
    with open(tmp_path / "training_log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == points
    assert [int(r["epoch"]) for r in rows] == [1, 1, 1, 2, 2, 2]
    for row in rows:
        assert all(np.isfinite(float(row[k])) for k in ("val_psnr_x2", "val_psnr_x3", "loss", "final_loss"))
    # The schedule's rate is logged at every point, not only at epoch ends (decay at epoch 1).
    assert [float(r["learning_rate"]) for r in rows] == pytest.approx([1e-3] * 3 + [1e-4] * 3)

    events = read_events(tmp_path / "tensorboard")
    for tag in ("loss", "final_loss", "stage_1_loss", "learning_rate", "val_psnr_x2", "val_psnr_x3"):
        assert [step for step, _ in events[tag]] == points, tag
    images = [tag for tag in events if tag.startswith("x2/")]
    assert len(images) == 1 and [step for step, _ in events[images[0]]] == points
    # The same numbers in both logs.
    assert [v for _, v in events["val_psnr_x2"]] == pytest.approx([float(r["val_psnr_x2"]) for r in rows])


def test_logged_losses_are_means_over_the_steps_since_the_previous_point(tmp_path):
    """Every window's mean, weighted by its steps, adds up to the epoch mean (what a log
    with points at epoch ends only holds); hand-derived from Keras's running means."""
    trainer.run(config(tmp_path / "points", epochs=1, val_set="", tensorboard=False))
    trainer.run(config(tmp_path / "epochs", epochs=1, val_set="", tensorboard=False, eval_every_steps=0))
    rows = {}
    for name in ("points", "epochs"):
        with open(tmp_path / name / "training_log.csv", newline="") as f:
            rows[name] = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows["points"]] == [2, 4, 5] and len(rows["epochs"]) == 1
    windows = [2, 2, 1]
    for loss in ("loss", "final_loss", "stage_1_loss"):
        weighted = sum(w * float(r[loss]) for w, r in zip(windows, rows["points"])) / 5
        assert weighted == pytest.approx(float(rows["epochs"][0][loss]), rel=1e-4), loss
