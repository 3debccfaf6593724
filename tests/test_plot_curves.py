"""training.plot_curves reads run folders and draws PSNR against step."""

import json

import pytest

from training import plot_curves


def make_run(folder, steps_per_epoch, values):
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"steps_per_epoch": steps_per_epoch}))
    rows = ["epoch,loss,val_psnr_x2"] + [f"{e},1.0,{v}" for e, v in enumerate(values)]
    (folder / "training_log.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_curve_is_indexed_by_training_step(tmp_path):
    run = make_run(tmp_path / "a", 500, [33.5, 34.0, 34.4])
    assert plot_curves.read_curve(run, "val_psnr_x2") == [(500, 33.5), (1000, 34.0), (1500, 34.4)]


def test_plot_writes_a_png_and_errors_are_clear(tmp_path):
    a = plot_curves.read_curve(make_run(tmp_path / "a", 100, [30.0, 31.0]), "val_psnr_x2")
    b = plot_curves.read_curve(make_run(tmp_path / "b", 50, [29.0, 30.5, 31.2]), "val_psnr_x2")
    out = tmp_path / "curves.png"
    plot_curves.plot({"A": a, "B": b}, "val_psnr_x2", out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000
    with pytest.raises(ValueError, match="no column 'val_psnr_x9'"):
        plot_curves.read_curve(tmp_path / "a", "val_psnr_x9")
    with pytest.raises(FileNotFoundError, match="not a training run folder"):
        plot_curves.read_curve(tmp_path, "val_psnr_x2")
