"""training.sidecar_eval: scoring a run's checkpoints from a second process."""

import json
import subprocess
import sys

import keras
import numpy as np
import PIL.Image
import pytest
import skimage.data

import cmsc_tf
from cmsc_tf.eval import protocol
from cmsc_tf.io.images import read_image
from tests import training_helpers as helpers
from training import checkpointing, curves, sidecar_lib, train_lib
from training.flag_values import parse_overrides

TINY = parse_overrides(helpers.TINY_OVERRIDES.split(","))


@pytest.fixture()
def images(tmp_path):
    folder = tmp_path / "Set2"
    folder.mkdir()
    PIL.Image.fromarray(skimage.data.chelsea()[40:112, 100:184]).save(folder / "cat.png")
    PIL.Image.fromarray(skimage.data.astronaut()[0:60, 200:266]).save(folder / "astronaut.png")
    return sorted(folder.iterdir())


def write_checkpoint(run, epoch, steps_done, perturb=0.0):
    """A checkpoint of the tiny model; `perturb` moves the (zero) reconstruction convs off bicubic."""
    model = cmsc_tf.build_model("cmsc", **TINY)
    model.compile(keras.optimizers.Adam(), **cmsc_tf.cascade_loss(model))
    model.optimizer.build(model.trainable_variables)
    if perturb:
        rng = np.random.default_rng(epoch)
        for variable in model.weights:
            if "reconstruction" in variable.path and variable.path.endswith("kernel"):
                variable.assign(perturb * rng.standard_normal(variable.shape).astype("float32"))
    run.mkdir(exist_ok=True)
    (run / "config.json").write_text(json.dumps({"variant": "cmsc", "model_overrides": TINY}))
    checkpointing.save(model, run, epoch, 0, keep_epoch_checkpoints=False, steps_done=steps_done)
    return model


def bicubic_psnr(paths, scale):
    scores = [protocol.score_image(protocol.hr_luminance(read_image(p), scale), scale,
                                   protocol.bicubic_predictor, ("psnr",))[0]["psnr"] for p in paths]
    return float(np.mean(scores))


def test_each_checkpoint_is_scored_once_with_the_papers_protocol(tmp_path, images):
    run = tmp_path / "run"
    write_checkpoint(run, 1, 3)
    row = sidecar_lib.score_latest(run, images, (2, 3), keep=True)
    # Zero reconstruction convolutions: the network is exactly bicubic.
    assert (row["epoch"], row["step"]) == (1, 3)
    for scale in (2, 3):
        np.testing.assert_allclose(row[f"val_psnr_x{scale}"], bicubic_psnr(images, scale), atol=0.01)
    assert sidecar_lib.score_latest(run, images, (2, 3), keep=True) is None  # step 3 is in the log
    write_checkpoint(run, 2, 6, perturb=0.05)
    later = sidecar_lib.score_latest(run, images, (2, 3), keep=True)
    assert later["step"] == 6 and abs(later["val_psnr_x2"] - row["val_psnr_x2"]) > 0.05
    assert sidecar_lib.scored_steps(run) == {3, 6}
    # The trainer kept only step 6; the sidecar kept both, and plot_curves reads its log.
    assert sorted(p.name for p in (run / "sidecar").iterdir()) == [
        "step00000003.weights.h5", "step00000006.weights.h5"]
    assert curves.read_curve(run, "val_psnr_x3") == [(3, row["val_psnr_x3"]), (6, later["val_psnr_x3"])]


def test_a_kept_checkpoint_exports_with_weights(tmp_path, images):
    run = tmp_path / "run"
    first = write_checkpoint(run, 1, 3, perturb=0.05)
    sidecar_lib.score_latest(run, images, (2,), keep=True)
    write_checkpoint(run, 2, 6, perturb=0.1)
    written = train_lib.export_checkpoint(run, tmp_path / "out" / "first", ["keras"],
                                          weights="sidecar/step00000003.weights.h5")
    loaded = keras.models.load_model(written["keras"], safe_mode=True)
    for a, b in zip(loaded.weights, first.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with pytest.raises(FileNotFoundError, match="no such weights file"):
        train_lib.export_checkpoint(run, tmp_path / "out" / "x", ["keras"], weights="sidecar/none.weights.h5")


def test_watch_scores_new_checkpoints_until_idle(tmp_path, images):
    run = tmp_path / "run"
    write_checkpoint(run, 1, 3)
    now, sleeps = [0.0], []

    def sleep(seconds):
        # The trainer writes one more checkpoint during the first wait.
        sleeps.append(seconds)
        if len(sleeps) == 1:
            write_checkpoint(run, 2, 6, perturb=0.05)
        now[0] += seconds

    rows = sidecar_lib.watch(run, images, (2,), poll_seconds=10.0, idle_timeout_s=25.0,
                             clock=lambda: now[0], sleep=sleep, report=lambda line: None)
    assert [r["step"] for r in rows] == [3, 6]
    # After step 6: waits of 10 s until 25 s have passed without a new checkpoint.
    assert sleeps == [10.0, 10.0, 10.0, 10.0]
    assert not (run / "sidecar").exists() or not list((run / "sidecar").iterdir())  # keep=False


def test_the_command_scores_once_and_reports_errors_in_one_line(tmp_path, images):
    run = tmp_path / "run"
    write_checkpoint(run, 1, 3)

    def sidecar(*args):
        return subprocess.run([sys.executable, "-m", "training.sidecar_eval", f"--model_dir={run}", *args],
                              cwd=helpers.REPO_ROOT, env=helpers.python_env(), capture_output=True,
                              text=True, timeout=300)

    result = sidecar(f"--images={images[0].parent}", "--scales=4", "--once")
    assert result.returncode == 0, result.stderr[-2000:]
    log = (run / sidecar_lib.LOG_FILE).read_text().splitlines()
    assert log[0] == "epoch,step,weights,val_psnr_x4" and log[1].startswith("1,3,,")
    np.testing.assert_allclose(float(log[1].split(",")[-1]), bicubic_psnr(images, 4), atol=0.01)
    missing = sidecar(f"--images={tmp_path}/none", "--once")
    assert missing.returncode != 0
    assert missing.stderr.strip().splitlines()[-1] == f"error: {tmp_path}/none: no such image folder"


def test_a_checkpoint_of_another_optimizer_setup_restores_the_weights_and_says_so(tmp_path, capsys):
    # training.main's Adam runs on a schedule (no learning-rate variable);
    # training.jax_lib's has a rate variable: one optimizer variable more.
    saved = write_checkpoint(tmp_path / "run", 1, 3, perturb=0.05)
    model = cmsc_tf.build_model("cmsc", **TINY)
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, 100, 0.5)
    model.compile(keras.optimizers.Adam(schedule), **cmsc_tf.cascade_loss(model))
    capsys.readouterr()
    assert checkpointing.restore(model, tmp_path / "run")["steps_done"] == 3
    assert "optimizer state not restored, the optimizer starts afresh" in capsys.readouterr().out
    for a, b in zip(model.weights, saved.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
