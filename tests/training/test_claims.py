"""training.claims: the arms compare what they claim to, and the driver runs end to end."""

import re
import subprocess
import sys

import pytest

from tests import training_helpers as helpers
from training.lib import studies


def build(arm):
    return studies.build_arm(arm)


def test_fig5_arms_have_equal_depth_and_the_stated_modules():
    models = {arm.label: build(arm) for arm in studies.STUDIES["fig5"].arms}
    # Fig. 4: conv, 4 two-layer modules, conv = 10 layers; the VDSR-style stack matches it.
    assert {label: m.depth for label, m in models.items()} == dict.fromkeys(models, 10)
    assert models["VDSR-style"].module_type == "conv" and models["VDSR-style"].num_modules == 8
    kernels = {label: tuple(m.kernel_sizes) for label, m in models.items() if label != "VDSR-style"}
    assert kernels == {"MSC_L3R5": (3, 5), "MSC_L3R7": (3, 7), "MR_L3R3": (3, 3), "MR_L5R5": (5, 5)}
    for label, model in models.items():
        assert model.num_features == 16 and len(model.outputs) == 1, label


def test_cascade_arms_share_four_msc_modules_and_differ_only_where_named():
    models = {arm.label: build(arm) for arm in studies.STUDIES["cascade"].arms}
    for label, model in models.items():
        assert model.num_stages * model.num_modules == 4 and model.module_type == "msc", label
        assert tuple(model.kernel_sizes) == (3, 5) and model.num_features == 16, label
    assert len(models["CMSC"].outputs) == 3 and len(models["CMSC_SR"].outputs) == 3  # y_1, y_2, y
    assert models["CMSC_SR"].shared_reconstruction and not models["CMSC"].shared_reconstruction
    assert len(models["CMSC_NS"].outputs) == 1 and models["CMSC_NS"].residual_features
    assert not models["CMSC_NRS"].residual_features
    assert models["PMSC"].num_stages == 1 and len(models["PMSC"].outputs) == 1


@pytest.mark.slow
def test_driver_trains_every_arm_with_one_budget_and_reports(tmp_path):
    tiny = ["train_sets=skimage_train", "val_set=skimage_test", "val_max_images=1",
            "scales=2,3", "val_scales=2,3", "patch_size=21", "batch_size=4", "epochs=2",
            "steps_per_epoch=2", "bn_recalibration_batches=1"]
    plot = tmp_path / "claims.png"
    result = subprocess.run(
        [sys.executable, "-m", "training.claims", "--study=cascade", "--arms=CMSC,PMSC",
         f"--runs_dir={tmp_path / 'runs'}", f"--plot={plot}", *(f"--extra={e}" for e in tiny)],
        cwd=helpers.REPO_ROOT, env=helpers.python_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = re.findall(r"^\| (CMSC|PMSC) \| ([\d,]+) \| (.*) \|$", result.stdout, re.MULTILINE)
    assert [r[0] for r in rows] == ["CMSC", "PMSC"]
    assert int(rows[0][1].replace(",", "")) == build(studies.STUDIES["cascade"].arms[0]).count_params()
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for arm in ("CMSC", "PMSC"):
        log = (tmp_path / "runs" / "cascade" / arm / "training_log.csv").read_text().splitlines()
        assert len(log) == 1 + 2  # header + the same 2 epochs for every arm


def test_driver_rejects_unknown_arms(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "training.claims", "--study=fig5", "--arms=NOPE",
         f"--runs_dir={tmp_path}"],
        cwd=helpers.REPO_ROOT, env=helpers.python_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "unknown arms for fig5: NOPE" in result.stderr


def _flagfile_values(path):
    """{flag: value} of a flag file's lines (comments skipped; a bare --flag is "true")."""
    lines = (line.strip() for line in (helpers.REPO_ROOT / path).read_text().splitlines())
    return dict((line[2:] + "=true").split("=")[:2] for line in lines if line.startswith("--"))


def test_recipe_arms_change_one_thing_keep_the_pixels_per_step_and_validate_off_the_test_sets():
    study = studies.STUDIES["recipe"]
    base = _flagfile_values(study.flagfiles[0])
    # The choice is made on images that are neither trained on nor reported.
    assert base["val_set"] == "sunhays80" and base["train_sets"] == "t91,bsd200"
    assert base["budget_clock"] == "cpu" and float(base["time_budget_s"]) > 0
    assert study.x == "seconds"
    pixels = int(base["patch_size"]) ** 2 * int(base["batch_size"])
    arms = {arm.label: dict(flag.split("=", 1) for flag in arm.flags) for arm in study.arms}
    assert {arm.variant for arm in study.arms} == {"cmsc"} and len({arm.overrides for arm in study.arms}) == 1
    assert arms["baseline"] == {}
    for label, changed in arms.items():
        if label == "baseline":
            continue
        assert all(base.get(flag) != value for flag, value in changed.items()), label
        if "patch_size" in changed:  # the crop arms: larger crops, the same pixels per step (within 5 %)
            assert int(changed["patch_size"]) ** 2 * int(changed["batch_size"]) == pytest.approx(pixels, rel=0.05)
        else:
            assert len(changed) == 1 or label == "cosine", label  # cosine also switches the step decay off
    assert arms["cosine"] == {"lr_schedule": "cosine", "decay_at_budget_fraction": "0"}


def test_curves_can_be_read_against_the_logged_seconds(tmp_path):
    from training.lib import curves

    (tmp_path / "config.json").write_text("{}")
    curves.append_row(tmp_path / "training_log.csv", {"step": 125, "seconds": 150.5, "val_psnr_x2": 32.0})
    curves.append_row(tmp_path / "training_log.csv", {"step": 250, "seconds": 301.0, "val_psnr_x2": 32.5})
    assert curves.read_curve(tmp_path, "val_psnr_x2") == [(125, 32.0), (250, 32.5)]
    assert curves.read_curve(tmp_path, "val_psnr_x2", x="seconds") == [(150.5, 32.0), (301.0, 32.5)]
