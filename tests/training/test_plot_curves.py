"""training.lib.curves reads run folders and draws PSNR against step."""

import json

import pytest

from training.lib import curves


def make_run(folder, steps_per_epoch, values):
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"steps_per_epoch": steps_per_epoch}))
    rows = ["step,epoch,loss,val_psnr_x2"] + [f"{(e + 1) * steps_per_epoch},{e + 1},1.0,{v}"
                                              for e, v in enumerate(values)]
    (folder / "training_log.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_curve_is_indexed_by_training_step(tmp_path):
    run = make_run(tmp_path / "a", 500, [33.5, 34.0, 34.4])
    assert curves.read_curve(run, "val_psnr_x2") == [(500, 33.5), (1000, 34.0), (1500, 34.4)]


def test_plot_writes_a_png_and_errors_are_clear(tmp_path):
    a = curves.read_curve(make_run(tmp_path / "a", 100, [30.0, 31.0]), "val_psnr_x2")
    b = curves.read_curve(make_run(tmp_path / "b", 50, [29.0, 30.5, 31.2]), "val_psnr_x2")
    out = tmp_path / "curves.png"
    curves.plot({"A": a, "B": b}, "val_psnr_x2", out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
    curves.plot({"A": a, "B": b}, "val_psnr_x2", tmp_path / "log.png", log_y=True)
    assert (tmp_path / "log.png").read_bytes() != out.read_bytes()  # other axis ticks
    with pytest.raises(ValueError, match="no column 'val_psnr_x9'"):
        curves.read_curve(tmp_path / "a", "val_psnr_x9")
    with pytest.raises(FileNotFoundError, match="not a training run folder"):
        curves.read_curve(tmp_path, "val_psnr_x2")


def plot_command(run, out, *args):
    """Runs `python -m training.plot_curves` on the run folder `run`, drawing to `out`."""
    import subprocess
    import sys

    from tests import training_helpers as helpers

    return subprocess.run([sys.executable, "-m", "training.plot_curves", f"--runs=A={run}", f"--out={out}", *args],
                          cwd=helpers.REPO_ROOT, env=helpers.python_env(), capture_output=True, text=True, timeout=120)


def test_command_draws_several_columns_and_names_a_missing_one(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"steps_per_epoch": 10}))
    (run / "training_log.csv").write_text("step,epoch,val_psnr_x2,val_psnr_x3\n10,1,33.0,30.0\n20,2,34.0,31.0\n")
    out = tmp_path / "c.png"

    def plot(metric):
        return plot_command(run, out, f"--metric={metric}")

    done = plot("val_psnr_x2,val_psnr_x3")
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:4] == b"\x89PNG"
    missing = plot("val_psnr_x2,val_psnr_x4")
    assert missing.returncode != 0 and "no column 'val_psnr_x4'" in missing.stderr


def test_plot_labels_have_units(tmp_path):
    a = curves.read_curve(make_run(tmp_path / "a", 100, [30.0, 31.0]), "val_psnr_x2")
    labels = curves.plot({"x2": a, "x3": a}, ["val_psnr_x2", "val_psnr_x3"], tmp_path / "p.png", val_set="set5")
    assert labels == {"x": "training step", "y": "Set5 PSNR (dB)", "legend": ["x2", "x3"]}
    assert curves.plot({"A": a}, "val_psnr_x2", tmp_path / "q.png")["y"] == "validation PSNR (dB)"
    assert curves.plot({"A": a}, "loss", tmp_path / "r.png", log_y=True)["y"] == "loss"
    assert curves.axis_label(["val_gain_x2"], "set14") == "Set14 PSNR gain over bicubic (dB)"
    assert [curves.column_label(m) for m in ("val_psnr_x4", "loss")] == ["x4", "loss"]


def test_stretch_means_average_the_reports_after_each_lower_bound_up_to_the_upper():
    curve = [(100, 30.0), (200, 31.0), (300, 33.0), (400, 34.0), (500, 36.0)]
    # (100, 300]: 31 and 33; (300, 500]: 34 and 36. The report at 100 opens no stretch.
    assert curves.stretch_means(curve, [100, 300, 500]) == [32.0, 35.0]
    assert curves.stretch_means(curve, [0, 500]) == [(30 + 31 + 33 + 34 + 36) / 5]
    with pytest.raises(ValueError, match="no report point in the stretch of steps 500 to 600"):
        curves.stretch_means(curve, [300, 500, 600])
    with pytest.raises(ValueError, match="ascending"):
        curves.stretch_means(curve, [300, 200])


def test_command_prints_stretch_means_and_refuses_bad_bounds(tmp_path):
    run = make_run(tmp_path / "run", 10, [33.0, 34.0, 35.0, 37.0])

    def plot(stretches):
        return plot_command(run, tmp_path / "c.png", f"--stretches={stretches}")

    done = plot("0,20,40")
    assert done.returncode == 0, done.stderr
    assert "| A | 33.500 | 36.000 |" in done.stdout
    bad = plot("20,10")
    assert bad.returncode != 0 and "--stretches: stretch bounds must be two or more ascending steps" in bad.stderr
