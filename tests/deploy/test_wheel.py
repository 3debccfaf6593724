"""The wheel of `pip install .` runs the shipped models by name, outside the checkout (issue 14),
and its commands evaluate a preset on a folder and export it to a LiteRT RGB model (issue 24).

Built from a copy of the package sources (the checkout gets no build/), installed
with ``pip install --no-deps --target`` and run with ``python -I`` from another
folder, so neither the checkout nor the editable install is on the path
(about 15 s: a wheel build, an install, two upscalings).
"""

import os
import shutil
import subprocess
import sys
import textwrap
import zipfile

import PIL.Image
import skimage.data

from cmsc_tf.models import presets
from tests.conftest import REPO_ROOT

SCRIPT = textwrap.dedent("""
    import pathlib, sys
    target = pathlib.Path(sys.argv[1]).resolve()
    sys.path.insert(0, str(target))
    import numpy as np
    import PIL.Image
    import cmsc_tf
    from cmsc_tf.deploy import cli
    from cmsc_tf.models import presets

    assert pathlib.Path(cmsc_tf.__file__).resolve().parent == target / "cmsc_tf", cmsc_tf.__file__
    assert presets.search_dirs() == [target / "cmsc_tf" / "_savedmodels"], presets.search_dirs()
    PIL.Image.fromarray(np.arange(16 * 12 * 3, dtype=np.uint8).reshape(16, 12, 3)).save("tiny.png")
    # cmsc-upscale's default model, then a preset by name.
    assert cli.run_cli(["tiny.png", "--scale", "2", "--out", "default"]) == 0
    assert not {"tensorflow", "keras"} & set(sys.modules), "the default path imported TensorFlow or Keras"
    assert cli.run_cli(["tiny.png", "--scale", "2", "--out", "named", "--model", "vdsr"]) == 0
    for out in ("default", "named"):
        assert PIL.Image.open(f"{out}/tiny_x2.png").size == (24, 32)
    model = cmsc_tf.CMSC.from_preset("cmsc_compact")
    assert model.receptive_radius == 20
    assert cmsc_tf.CMSC.from_preset("vdsr").receptive_radius == 20  # its packaged .keras file
    assert list(cmsc_tf.list_presets()) == ["cmsc_compact", "cmsc_full", "vdsr"]
    print("OK")
""")


# What a console script does (``from <module> import run; sys.exit(run())``), with the
# installed package alone on the path; argv[0] is the script's name.
COMMAND = textwrap.dedent("""
    import sys
    sys.path.insert(0, %r)
    sys.argv[0] = "installed"
    from %s import run
    sys.exit(run())
""")


def _run(command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result


def test_wheel_ships_presets_and_runs_them_by_name(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in ("setup.py", "MANIFEST.in"):
        shutil.copy(REPO_ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO_ROOT / "cmsc_tf", source / "cmsc_tf", ignore=ignore)
    shutil.copytree(REPO_ROOT / "savedmodels", source / "savedmodels", ignore=ignore)
    shutil.copytree(REPO_ROOT / "training", source / "training", ignore=ignore)
    (source / "savedmodels" / "quick.keras").write_bytes(b"a local export, not a preset")

    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels),
          str(source)], cwd=tmp_path)
    (wheel,) = wheels.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    # No top-level training/ (it would shadow other packages named so): cmsc_tf alone.
    assert {name.split("/")[0] for name in names} == {"cmsc_tf", "cmsc_tf-0.1.0.dist-info"}
    shipped = {name.removeprefix("cmsc_tf/_savedmodels/") for name in names
               if name.startswith("cmsc_tf/_savedmodels/")}
    for preset in presets.PRESETS.values():
        assert f"{preset['saved_model']}/saved_model.pb" in shipped
        assert f"{preset['saved_model']}/variables/variables.index" in shipped
        assert f"{preset['saved_model']}/assets/cmsc_metadata.json" in shipped
        for kind in ("keras", "tflite"):
            if kind in preset:
                assert preset[kind] in shipped
    assert "quick.keras" not in shipped
    assert not any(name.endswith("__init__.py") for name in names if "_savedmodels" in name)

    target = tmp_path / "site"
    _run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(target),
          str(wheel)], cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = _run([sys.executable, "-I", "-c", SCRIPT, str(target)], cwd=elsewhere, env=env, timeout=300)
    assert result.stdout.strip().endswith("OK")

    # The installed commands, run as their console scripts run them, on a preset.
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    scripts = zipfile.ZipFile(wheel).read(entry_points).decode()
    for line in ("cmsc-upscale = cmsc_tf.deploy.cli:main", "cmsc-evaluate = cmsc_tf.deploy.evaluate_cli:run",
                 "cmsc-export = cmsc_tf.deploy.export_cli:run"):
        assert line in scripts
    (elsewhere / "sets" / "two").mkdir(parents=True)
    photo = skimage.data.astronaut()
    for name, (top, left) in {"a": (40, 160), "b": (300, 200)}.items():
        PIL.Image.fromarray(photo[top : top + 48, left : left + 40]).save(elsewhere / "sets" / "two" / f"{name}.png")
    evaluated = _run([sys.executable, "-I", "-c", COMMAND % (str(target), "cmsc_tf.deploy.evaluate_cli"), "--model=cmsc_compact",
                      "--data_dir=sets", "--datasets=two", "--scales=2", "--metrics=psnr"],
                     cwd=elsewhere, env=env, timeout=300)
    (row,) = [line for line in evaluated.stdout.splitlines() if line.startswith("| two | x2 |")]
    assert 25 < float(row.split("|")[3]) < 60  # a PSNR in dB
    _run([sys.executable, "-I", "-c", COMMAND % (str(target), "cmsc_tf.deploy.export_cli"), "--keras_model=cmsc_compact",
          "--export_prefix=out/compact", "--formats=tflite_rgb_float16"], cwd=elsewhere, env=env, timeout=300)
    from cmsc_tf.deploy.tflite import read_embedded_metadata

    assert read_embedded_metadata(elsewhere / "out" / "compact_rgb_float16.tflite")["receptive_radius"] == 20
