"""cmsc.flags, the paper's recipe, as researchers run it: the full CMSC on the 291 images trains.

The recipe's clipping reading was chosen by `python -m training.claims
--study=clipping` (docs/training.md); with the literal reading (each element
to +-0.4 of a loss summed over the pixels) these first steps made the loss
grow. Only what CPU minutes allow is changed here: the epoch length, the
training images (the first few of T91 and BSD200: the grid pairs of all 291,
741,088 with the augmentation, take about a minute to build for six steps),
and validation on one Set5 image at x2.
"""

import csv
import json
import math

import numpy as np
import pytest

from tests import training_helpers as helpers

# Training folder -> how many of its images (sorted by name) the test trains on.
SUBSET = {"train/T91": 4, "train/BSD200": 2}


def datasets_subset(shared_datasets, root):
    """A datasets folder (image_sets' layout): the first images of each training set, and
    Set5's smallest image alone (the full model validates it at every epoch end)."""
    for folder, count in SUBSET.items():
        (root / folder).mkdir(parents=True)
        for path in sorted((shared_datasets / folder).iterdir())[:count]:
            (root / folder / path.name).symlink_to(path)
    (root / "benchmark" / "Set5").mkdir(parents=True)
    (root / "benchmark" / "Set5" / "butterfly.png").symlink_to(shared_datasets / "benchmark" / "Set5" / "butterfly.png")
    return root


@pytest.mark.slow
def test_a_few_steps_of_cmsc_flags_keep_the_loss_finite_and_falling(tmp_path, shared_dir):
    model_dir, data_dir = tmp_path / "run", datasets_subset(shared_dir / "datasets", tmp_path / "datasets")
    result = helpers.run_main(
        ["--flagfile=cmsc.flags", f"--data_dir={data_dir}", "--steps_per_epoch=2",
         "--epochs=3", "--val_max_images=1", "--val_scales=2", f"--model_dir={model_dir}",
         "--export_prefix=", "--tensorboard=false", "--keep_epoch_checkpoints=false"],
        timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads((model_dir / "config.json").read_text())
    # The recipe itself: the paper's model, data, optimizer and schedule.
    assert config["model_overrides"] == {} and config["variant"] == "cmsc"
    assert config["train_sets"] == ["t91", "bsd200"] and config["batch_size"] == 32
    assert (config["optimizer"], config["learning_rate"], config["momentum"]) == ("sgd", 0.1, 0.9)
    with open(model_dir / "training_log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    losses = [float(row["loss"]) for row in rows]
    assert len(losses) == 3 and all(math.isfinite(v) for v in losses), losses
    assert losses[0] > losses[1] > losses[2], losses
    assert all(math.isfinite(float(row["val_psnr_x2"])) for row in rows), rows

    # The clipping as cmsc.flags reads it: the gradient's global norm at most c.
    # Keras's SGD keeps the momentum v_t = mu v_(t-1) - lr g_t, so after t steps
    # ||v_t|| <= lr c (1 + mu + ... + mu^(t-1)), here 0.1 * 0.4 * 4.69 = 0.187.
    # Each element clipped to +-c instead would allow sqrt(#weights) times that,
    # and the untrained network's gradients (a loss of ~1e4) are far larger.
    lr, mu, c, steps = config["learning_rate"], config["momentum"], config["clip_threshold"], 6
    assert config["clip"] == "global_norm" and json.loads((model_dir / "state.json").read_text())["step"] == steps
    momenta = [a for name, a in helpers.final_weights(model_dir).items() if name.startswith("optimizer") and a.ndim]
    norm = math.sqrt(sum(float(np.sum(np.square(m, dtype=np.float64))) for m in momenta))
    assert len(momenta) > 100 and 0 < norm <= lr * c * (1 - mu**steps) / (1 - mu) * (1 + 1e-5), norm
