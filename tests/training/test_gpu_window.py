"""The lent GPU window (training/gpu_window.py): its pieces, and its CPU dry run end to end.

The dry run is the window's own three steps with a tiny model on JAX (CPU),
TensorFlow blocked in every process as on the host: prepare here, run with a
few seconds of budget, unpack what came back, and training.main resumes the
unpacked run folder.
"""

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

from cmsc_tf.io import image_sets, images
from tests import training_helpers as helpers
from training import gpu_window
from training.lib import checkpointing


def photo_datasets(root, train=3, val=3, size=96):
    """A datasets folder of skimage photographs: train/T91 as RGB PNGs, SunHays80 as JPEGs."""
    photos = [image_sets.load_photo(name) for name in image_sets.TRAIN_PHOTOS[:train + val]]
    for i, photo in enumerate(photos[:train]):
        images.write_image(root / "train/T91" / f"t{i}.png", photo[:size, :size])
    for i, photo in enumerate(photos[train:]):
        rgb = photo if photo.ndim == 3 else np.stack([photo] * 3, axis=-1)
        images.write_image(root / "validation/SunHays80" / f"v{i}.jpg", rgb[:size, :size, :3])
    return root


def test_packed_sets_read_back_as_the_same_luminance(tmp_path):
    data = photo_datasets(tmp_path / "data")
    image_sets.pack_luminance_set("t91", tmp_path / "packed", data)
    folder = image_sets.pack_luminance_set("sunhays80", tmp_path / "packed", data, max_images=2)
    assert sorted(p.name for p in folder.iterdir()) == ["v0.jpg.png", "v1.jpg.png"]
    for name, val_images in (("t91", 3), ("sunhays80", 2)):
        source = image_sets.read_luminance_set(name, data)[:val_images]
        packed = image_sets.read_luminance_set(name, tmp_path / "packed")
        assert len(packed) == val_images
        for (_, a), (_, b) in zip(source, packed):
            assert b.ndim == 2 and np.array_equal(a, b)
    with pytest.raises(ValueError, match="embedded"):
        image_sets.pack_luminance_set("skimage_train", tmp_path / "packed")


def tiny_model():
    import cmsc_tf

    overrides = helpers.TINY_OVERRIDES.split(",")
    return cmsc_tf.build_model("cmsc", **{k: (v if not v.isdigit() else int(v))
                                          for k, v in (o.split("=") for o in overrides)})


def test_seed_run_takes_the_model_weights_without_the_optimizer(tmp_path, capsys):
    import keras

    model = tiny_model()
    model.save(tmp_path / "tiny.keras")
    state = checkpointing.seed_run(tmp_path / "run", tmp_path / "tiny.keras")
    assert state["step"] == 0 and state["seeded_from"].endswith("tiny.keras")
    with h5py.File(tmp_path / "run" / state["weights"], "r") as f:
        assert "optimizer" not in f and "layers" in f

    # Compiled with Adam, restored: the weights are the model's, the optimizer starts afresh (one note).
    fresh = tiny_model()
    fresh.compile(keras.optimizers.Adam(1e-4), loss="mse")
    assert checkpointing.restore(fresh, tmp_path / "run")["step"] == 0
    for a, b in zip(model.weights, fresh.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    assert "optimizer state not restored" in capsys.readouterr().out

    # A run folder: its step, seconds and logs go on; its weights file's optimizer stays behind.
    fresh.optimizer.build(fresh.trainable_variables)
    checkpointing.save(fresh, tmp_path / "trained", 30, epoch=3, seconds=12.5, budget_decay_step=20)
    (tmp_path / "trained" / "training_log.csv").write_text("step,epoch,seconds\n30,3,12.5\n")
    again = checkpointing.seed_run(tmp_path / "again", tmp_path / "trained")
    assert (again["step"], again["seconds"], again["budget_decay_step"]) == (30, 12.5, 20)
    assert (tmp_path / "again" / "training_log.csv").read_text().endswith("30,3,12.5\n")
    with h5py.File(tmp_path / "again" / again["weights"], "r") as f:
        assert "optimizer" not in f
    with pytest.raises(ValueError, match="already holds a run"):
        checkpointing.seed_run(tmp_path / "again", tmp_path / "trained")

    # One checkpoint of a run: its model weights at step 0, without its optimizer even when asked.
    checkpoint = tmp_path / "trained" / checkpointing.read_state(tmp_path / "trained")["weights"]
    epoch = checkpointing.seed_run(tmp_path / "epoch", checkpoint, keep_optimizer=True)
    assert epoch["step"] == 0 and "seconds" not in epoch and epoch["seeded_from"] == str(checkpoint)
    with h5py.File(checkpoint, "r") as source, h5py.File(tmp_path / "epoch" / epoch["weights"], "r") as f:
        assert "optimizer" in source and "optimizer" not in f and "layers" in f
    with pytest.raises(ValueError, match="no such checkpoint file"):
        checkpointing.seed_run(tmp_path / "other", tmp_path / "trained" / "ckpt-s000000099.weights.h5")
    with pytest.raises(ValueError, match="neither a .keras file, a .weights.h5 checkpoint nor a run folder"):
        checkpointing.seed_run(tmp_path / "other", tmp_path / "nothing")


def test_park_moves_the_big_folders_out_of_what_travels_and_unpark_puts_them_back(tmp_path):
    root = tmp_path / "repo"
    (root / "savedmodels").mkdir(parents=True)
    (root / "savedmodels" / "big.keras").write_bytes(b"x" * 100_000)
    (root / "checkpoints").mkdir()
    (root / "checkpoints" / "state.json").write_text("{}")
    (root / "code.py").write_text("print()\n")
    (root / ".gitignore").write_text("/.parked/\n/.gpu_window/\n")
    (root / ".gpu_window").mkdir()
    (root / ".gpu_window" / "data").write_bytes(b"y" * 1000)
    for command in (["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        subprocess.run(["git", *command], cwd=root, check=True)
    before = gpu_window.travelling_bytes(root, [".gpu_window"])
    assert before > 100_000 + 1000

    assert gpu_window.park(root) == ["savedmodels", "checkpoints"]
    assert not (root / "savedmodels").exists() and (root / ".parked" / "savedmodels" / "big.keras").exists()
    assert gpu_window.travelling_bytes(root, [".gpu_window"]) < before - 100_000
    with pytest.raises(gpu_window.WindowError, match="unpark"):
        (root / "savedmodels").mkdir()
        gpu_window.park(root)
    (root / "savedmodels").rmdir()

    assert gpu_window.unpark(root) == ["checkpoints", "savedmodels"]
    assert (root / "savedmodels" / "big.keras").stat().st_size == 100_000
    assert subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True,
                          text=True).stdout == ""
    assert gpu_window.unpark(root) == []


def test_unpack_refuses_parts_that_do_not_join(tmp_path):
    (tmp_path / "back").mkdir()
    (tmp_path / "back" / "window.json").write_text(json.dumps({"parts": ["run.tar.000"], "sha256": "0"}))
    result = subprocess.run([sys.executable, "-m", "training.gpu_window", "unpack",
                             f"--from={tmp_path / 'back'}", f"--to={tmp_path / 'run'}"],
                            cwd=helpers.REPO_ROOT, env=helpers.python_env(), capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"training.gpu_window: error: {tmp_path / 'back'} lacks run.tar.000"]
    (tmp_path / "back" / "run.tar.000").write_bytes(b"not a tar")
    result = subprocess.run([sys.executable, "-m", "training.gpu_window", "unpack",
                             f"--from={tmp_path / 'back'}", f"--to={tmp_path / 'run'}"],
                            cwd=helpers.REPO_ROOT, env=helpers.python_env(), capture_output=True, text=True)
    assert "SHA-256 differs" in result.stderr and len(result.stderr.strip().splitlines()) == 1


# The tiny model and data of the dry run: small enough for seconds per epoch on 2 CPU cores.
DRY_RUN_FLAGS = [f"--model_overrides={helpers.TINY_OVERRIDES}", "--train_sets=t91", "--batch_size=4",
                 "--patch_size=21", "--steps_per_epoch=3", "--val_max_images=2", "--val_crop_size=48",
                 "--val_scales=3"]


@pytest.mark.slow
def test_cpu_dry_run_of_the_window_comes_back_and_resumes(tmp_path):
    pytest.importorskip("jax")
    from benchmarks.training_flops import conv_flops_per_pixel

    data = photo_datasets(tmp_path / "data")
    tiny_model().save(tmp_path / "tiny.keras")
    work, out = tmp_path / "work", tmp_path / "out"
    # Every process of the host's side runs without TensorFlow, as there.
    (tmp_path / "block").mkdir()
    (tmp_path / "block" / "sitecustomize.py").write_text(helpers.BLOCK_TENSORFLOW)
    env = helpers.python_env("jax")
    env.update(JAX_PLATFORMS="cpu", PYTHONPATH=f"{tmp_path / 'block'}:{env['PYTHONPATH']}")

    def window(*args):
        return subprocess.run([sys.executable, "-m", "training.gpu_window", *args], cwd=helpers.REPO_ROOT,
                              env=env, capture_output=True, text=True, timeout=600)

    prepared = window("prepare", f"--weights={tmp_path / 'tiny.keras'}", f"--data_dir={data}",
                      f"--work_dir={work}", "--no_wheels", "--no_park", "--", *DRY_RUN_FLAGS)
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    assert "python3 -m training.gpu_window run --out=$OUT" in prepared.stdout
    assert len(list((work / "datasets" / "validation" / "SunHays80").iterdir())) == 2

    ran = window("run", f"--out={out}", f"--work_dir={work}", "--train_s=6", "--window_s=500",
                 "--peak_tflops=1")
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    summary = json.loads((out / "window.json").read_text())
    assert sorted(p.name for p in out.iterdir()) == ["run.tar.000", "train.log", "window.json"]
    log = (out / "train.log").read_text()
    assert "optimizer state not restored" in log  # seeded from the .keras weights alone
    # The budget stopped it, not the deadline, well inside the window.
    assert summary["stopped_by_budget"] and not summary["stopped_at_deadline"]
    assert summary["train_returncode"] == 0 and summary["wall_s"] < 500
    assert summary["steps"] == summary["step"] > 0 and summary["steps"] % 3 == 0
    assert summary["device"] == "cpu" and summary["psnr"]["3"] > 0
    assert summary["pairs_per_s"] == pytest.approx(summary["steps"] * 4 / summary["train_seconds"], rel=0.01)
    flops = 3 * conv_flops_per_pixel(tiny_model()) * 21 ** 2 * 4
    assert summary["flops_per_step"] == flops
    if summary["steady_pairs_per_s"]:  # two report points or more in the window
        assert summary["fraction_of_peak"] == pytest.approx(
            summary["steady_pairs_per_s"] / 4 * flops / 1e12, rel=0.01, abs=1e-4)

    unpacked = window("unpack", f"--from={out}", f"--to={tmp_path / 'back'}")
    assert unpacked.returncode == 0, unpacked.stderr[-3000:]
    state = checkpointing.read_state(tmp_path / "back")
    assert state["step"] == summary["step"]
    with h5py.File(tmp_path / "back" / state["weights"], "r") as f:
        assert "optimizer" in f  # the Adam moments came back

    epochs = state["step"] // 3 + 1
    resumed = helpers.run_main([f"--flagfile={work / 'train.flags'}", f"--model_dir={tmp_path / 'back'}",
                                f"--epochs={epochs}", "--time_budget_s=100000"], timeout=600, backend="jax",
                               env={"JAX_PLATFORMS": "cpu"})
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming from {state['weights']} at step {state['step']}" in resumed.stderr
    assert "optimizer state not restored" not in resumed.stdout + resumed.stderr
    assert checkpointing.read_state(tmp_path / "back")["step"] == epochs * 3
