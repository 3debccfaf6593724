"""cmsc-upscale: batches with bad files, every pixel mode, atomic outputs, exit codes."""

import os
import shutil
import signal
import struct
import subprocess
import sys
import threading
import zlib

import numpy as np
import PIL.Image
import pytest

from cmsc_tf.deploy import cli, loader
from cmsc_tf.io import atomic
from deploy_models import random_rgb, small_cmsc

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def zero_width_png():
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 0, 5, 8, 0, 0, 0, 0)  # width 0, height 5, 8-bit gray
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    small_cmsc().save(path)
    return str(path)


def error_lines(captured):
    return [line for line in captured.err.splitlines() if "cmsc-upscale: error:" in line]


def files_under(folder):
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs)


def test_bad_files_fail_alone_with_one_line_each(tmp_path, model_path, capsys):
    rgb = random_rgb(12, 10, seed=1)
    PIL.Image.fromarray(rgb).save(tmp_path / "good.png")
    (tmp_path / "corrupt.png").write_bytes((tmp_path / "good.png").read_bytes()[:70])
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "empty.png").write_bytes(zero_width_png())
    PIL.Image.fromarray(np.zeros((1, 4097), np.uint8)).save(tmp_path / "wide.png")  # x8: 32776 columns
    PIL.Image.fromarray(rgb[:7, :9]).save(tmp_path / "good2.jpg")
    names = ["good.png", "corrupt.png", "missing.png", "notes.txt", "empty.png", "wide.png", "good2.jpg"]
    out = tmp_path / "out"

    code = cli.run_cli([str(tmp_path / n) for n in names] + ["--scale", "8", "--model", model_path, "--out", str(out)])

    assert code == 1
    errors = error_lines(capsys.readouterr())
    expected = {
        "corrupt.png": "corrupt or unreadable image data",
        "missing.png": "no such file",
        "notes.txt": "unsupported or unrecognised image format",
        "empty.png": "image is empty (0x5 pixels)",
        "wide.png": "output: 32776x8 pixels is over the output limit",
    }
    assert len(errors) == len(expected)
    for name, message in expected.items():
        assert any(f"{tmp_path / name}: {message}" in line for line in errors), (name, errors)
    # The good files of the batch were still processed; nothing else was left behind.
    assert files_under(out) == ["good2_x8.png", "good_x8.png"]
    assert PIL.Image.open(out / "good_x8.png").size == (80, 96)


@pytest.mark.parametrize(
    "mode,make,out_mode",
    [
        ("L", lambda a: PIL.Image.fromarray(a[..., 0]), "L"),
        ("RGBA", lambda a: PIL.Image.fromarray(np.dstack([a, a[..., :1]])), "RGBA"),
        ("P", lambda a: PIL.Image.fromarray(a).convert("P"), "RGB"),
        ("I;16", lambda a: PIL.Image.fromarray(a[..., 0].astype(np.uint16) * 257), "L"),
        ("1", lambda a: PIL.Image.fromarray(a[..., 0] > 128), "L"),
    ],
)
def test_pixel_modes(tmp_path, model_path, capsys, mode, make, out_mode):
    image = make(random_rgb(9, 11, seed=2))
    image.save(tmp_path / "in.png")
    assert PIL.Image.open(tmp_path / "in.png").mode == mode
    code = cli.run_cli([str(tmp_path / "in.png"), "--scale", "1.5", "--model", model_path, "--out", str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    result = PIL.Image.open(tmp_path / "in_x1.5.png")
    assert result.mode == out_mode and result.size == (17, 14)  # ceil(11 * 1.5), ceil(9 * 1.5)


def test_folder_input_keeps_structure_and_skips_non_images(tmp_path, model_path):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    PIL.Image.fromarray(random_rgb(6, 6)).save(tmp_path / "in" / "sub" / "a.png")
    (tmp_path / "in" / "README").write_text("ignored: not an image extension")
    out = tmp_path / "out"
    assert cli.run_cli([str(tmp_path / "in"), "--scale", "2", "--model", model_path, "--out", str(out)]) == 0
    assert files_under(out) == [os.path.join("in", "sub", "a_x2.png")]


def test_outputs_stay_in_out_and_are_not_reread(tmp_path, model_path, monkeypatch):
    """`..` as input still writes inside --out; --out inside the input folder
    is not scanned, so a rerun makes no `_x2_x2` files."""
    work = tmp_path / "photos" / "work"
    work.mkdir(parents=True)
    PIL.Image.fromarray(random_rgb(6, 6)).save(tmp_path / "photos" / "a.png")
    monkeypatch.chdir(work)
    out = tmp_path / "photos" / "up"
    for _ in range(2):
        assert cli.run_cli(["..", "--scale", "2", "--model", model_path, "--out", str(out)]) == 0
    assert files_under(out) == [os.path.join("photos", "a_x2.png")]


def test_failed_write_leaves_no_file(tmp_path, model_path, capsys, monkeypatch):
    PIL.Image.fromarray(random_rgb(6, 6)).save(tmp_path / "a.png")
    out = tmp_path / "out"

    def broken_save(self, fp, format=None, **params):
        with open(fp, "wb") as f:  # half an image reaches the disk, then the disk is full
            f.write(b"\x89PNG half an image")
        raise OSError("disk full")

    monkeypatch.setattr(PIL.Image.Image, "save", broken_save)
    assert cli.run_cli([str(tmp_path / "a.png"), "--scale", "2", "--model", model_path, "--out", str(out)]) == 1
    assert any("a_x2.png: cannot write (disk full)" in line for line in error_lines(capsys.readouterr()))
    assert files_under(out) == []


def test_bad_command_lines(tmp_path, model_path, capsys):
    assert cli.run_cli(["x.png", "--scale", "9", "--model", model_path]) == 2
    assert "between 1 and 8" in capsys.readouterr().err
    assert cli.run_cli(["x.png", "--scale", "2", "--model", str(tmp_path / "nope")]) == 2
    assert error_lines(capsys.readouterr()) == [
        f"cmsc-upscale: error: cannot load model: model not found: {tmp_path / 'nope'} is not a file, a folder "
        "or a preset (the presets: cmsc_compact, cmsc_full, vdsr)"]


def run_module(args, cwd):
    env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", "cmsc_tf.deploy.cli", *args], cwd=cwd, env=env, capture_output=True, text=True)


def test_python_m_form(tmp_path, model_path):
    PIL.Image.fromarray(random_rgb(8, 8)).save(tmp_path / "a.png")
    done = run_module(["a.png", "--scale", "2", "--model", model_path], tmp_path)
    assert done.returncode == 0, done.stderr
    assert PIL.Image.open(tmp_path / "upscaled" / "a_x2.png").size == (16, 16)


def test_without_model_runs_the_shipped_default(tmp_path):
    PIL.Image.fromarray(random_rgb(12, 10)).save(tmp_path / "a.png")
    default = run_module(["a.png", "--scale", "2", "--out", "default"], tmp_path)
    assert default.returncode == 0, default.stderr
    # The default model by name, at its default precision (dynamic int8; tests/deploy/test_fast_path.py).
    named = run_module(["a.png", "--scale", "2", "--out", "named", "--model", loader.DEFAULT_PRESET], tmp_path)
    assert named.returncode == 0, named.stderr
    a, b = (np.asarray(PIL.Image.open(tmp_path / d / "a_x2.png")) for d in ("default", "named"))
    assert a.shape == (24, 20, 3) and np.array_equal(a, b)


def test_missing_default_model_is_one_line(tmp_path, monkeypatch, capsys):
    PIL.Image.fromarray(random_rgb(8, 8)).save(tmp_path / "a.png")
    monkeypatch.setattr(loader, "default_model_path", lambda: tmp_path / "gone" / loader.DEFAULT_MODEL)
    assert cli.run_cli([str(tmp_path / "a.png"), "--scale", "2", "--out", str(tmp_path / "other")]) == 2
    [line] = error_lines(capsys.readouterr())
    assert line.startswith("cmsc-upscale: error: cannot load model: default model cmsc_compact not found")
    assert not (tmp_path / "other").exists()


def test_out_that_is_or_holds_an_input_folder_is_refused(tmp_path, model_path, capsys, monkeypatch):
    """Images under --out are not read: such an --out would silently process nothing."""
    (tmp_path / "in").mkdir()
    PIL.Image.fromarray(random_rgb(6, 6)).save(tmp_path / "in" / "a.png")
    monkeypatch.setattr(cli, "_load_upscaler", lambda args: pytest.fail("refused only after loading the model"))
    for out in (tmp_path / "in", tmp_path, tmp_path / "in" / ".."):
        assert cli.run_cli([str(tmp_path / "in"), "--scale", "2", "--model", model_path, "--out", str(out)]) == 2
        [line] = error_lines(capsys.readouterr())
        assert f"is or contains the input folder {tmp_path / 'in'}" in line
    assert files_under(tmp_path) == [os.path.join("in", "a.png")]


def test_unusable_out_is_refused_before_any_work(tmp_path, model_path, capsys, monkeypatch):
    PIL.Image.fromarray(random_rgb(6, 6)).save(tmp_path / "a.png")
    (tmp_path / "a_file").write_text("")
    monkeypatch.setattr(cli, "_load_upscaler", lambda args: pytest.fail("refused only after loading the model"))
    for out in (tmp_path / "a_file", tmp_path / "a_file" / "out"):
        assert cli.run_cli([str(tmp_path / "a.png"), "--scale", "2", "--out", str(out)]) == 2
        assert error_lines(capsys.readouterr()) == [f"cmsc-upscale: error: --out {out}: {tmp_path / 'a_file'} is not a folder"]


def test_leftover_temporary_files_are_not_inputs(tmp_path, model_path):
    (tmp_path / "in").mkdir()
    PIL.Image.fromarray(random_rgb(6, 6)).save(tmp_path / "in" / "a.png")
    shutil.copy(tmp_path / "in" / "a.png", tmp_path / "in" / ".tmp-0123abcd-b.png")  # a killed run's leftover
    (tmp_path / "in" / ".tmp-89abcdef-c.png").write_bytes(b"")
    out = tmp_path / "out"
    assert cli.run_cli([str(tmp_path / "in"), "--scale", "2", "--model", model_path, "--out", str(out)]) == 0
    assert files_under(out) == [os.path.join("in", "a_x2.png")]


def test_fifos_are_reported_never_opened(tmp_path, model_path, capsys):
    (tmp_path / "in").mkdir()
    PIL.Image.fromarray(random_rgb(6, 6)).save(tmp_path / "in" / "a.png")
    fifos = [tmp_path / "in" / "pipe.png", tmp_path / "fifo.jpg"]
    for fifo in fifos:
        os.mkfifo(fifo)

    def unblock():  # had the CLI opened a FIFO, it would wait for a writer forever: be that writer
        for fifo in fifos:
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:  # no reader: nobody is blocked
                pass

    watchdog = threading.Timer(20, unblock)
    watchdog.start()
    try:
        code = cli.run_cli([str(tmp_path / "in"), str(fifos[1]), "--scale", "2", "--model", model_path,
                            "--out", str(tmp_path / "out")])
    finally:
        watchdog.cancel()
    assert code == 1
    assert error_lines(capsys.readouterr()) == [
        f"cmsc-upscale: error: {fifo}: not a regular file (a FIFO, socket or device); not opened" for fifo in fifos]
    assert files_under(tmp_path / "out") == [os.path.join("in", "a_x2.png")]


def test_empty_input_folder_is_an_error(tmp_path, model_path, capsys):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("no image here")
    code = cli.run_cli([str(tmp_path / "empty"), "--scale", "2", "--model", model_path, "--out", str(tmp_path / "o")])
    assert code == 1
    assert error_lines(capsys.readouterr()) == [f"cmsc-upscale: error: {tmp_path / 'empty'}: no images found in this folder"]
    assert not (tmp_path / "o").exists()


def test_output_name_of_247_characters(tmp_path, model_path):
    """The temporary name (longer than the final one) must still fit the 255-byte name limit."""
    stem = "p" * 240
    PIL.Image.fromarray(random_rgb(6, 6)).save(tmp_path / f"{stem}.png")
    out = tmp_path / "out"
    assert cli.run_cli([str(tmp_path / f"{stem}.png"), "--scale", "2", "--model", model_path, "--out", str(out)]) == 0
    assert files_under(out) == [f"{stem}_x2.png"] and len(f"{stem}_x2.png") == 247


@pytest.mark.parametrize("damage", ["truncated", "random bytes"])
def test_corrupt_keras_file_is_named_as_such(tmp_path, capsys, damage):
    model = tmp_path / "damaged.keras"
    shipped = (loader.default_model_path().parents[1] / "cmsc_compact.keras").read_bytes()
    model.write_bytes(shipped[: len(shipped) // 2] if damage == "truncated" else np.random.default_rng(0).bytes(4096))
    PIL.Image.fromarray(random_rgb(6, 6)).save(tmp_path / "a.png")
    assert cli.run_cli([str(tmp_path / "a.png"), "--scale", "2", "--model", str(model), "--out", str(tmp_path)]) == 2
    [line] = error_lines(capsys.readouterr())
    assert line == f"cmsc-upscale: error: cannot load model: {model}: not a valid .keras file (not a zip archive: truncated or corrupt)"


# Writes the first image half, says so on stdout, then waits for its stdin to
# close (the test closes it after the signal, so no delay lets the write go on):
# the signal arrives while a temporary file is on disk, the case that must leave none.
_SLOW_WRITER = """
import sys, PIL.Image
from cmsc_tf.deploy import cli

def no_signal():
    raise AssertionError("stdin closed but no signal arrived")

def slow_save(self, fp, format=None, **params):
    with open(fp, "wb") as f:
        f.write(b"half an image")
    print("writing", flush=True)
    sys.stdin.read()
    no_signal()  # entering a Python function runs a pending signal's handler first

PIL.Image.Image.save = slow_save
sys.argv[0] = "cmsc-upscale"
cli.main()
"""


@pytest.mark.parametrize("signum,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signals_leave_no_temporary_file(tmp_path, model_path, signum, code):
    for i in range(3):
        PIL.Image.fromarray(random_rgb(6, 6, seed=i)).save(tmp_path / f"{i}.png")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(
        [sys.executable, "-c", _SLOW_WRITER, *(f"{i}.png" for i in range(3)), "--scale", "2", "--model", model_path,
         "--out", str(out)], cwd=tmp_path, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        assert process.stdout.readline() == "writing\n"
        [temporary] = os.listdir(out)
        assert atomic.is_temporary(temporary)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=60)  # closes stdin: the writer's wait ends
    finally:
        process.kill()
    assert process.returncode == code, stderr
    assert f"interrupted by {signal.Signals(signum).name}" in stderr and "Traceback" not in stderr
    # On a line of its own: the progress bar, mid-line when the signal came, was ended first.
    assert any(line.startswith("cmsc-upscale: interrupted by") for line in stderr.split("\n")), repr(stderr)
    assert os.listdir(out) == []


# The slow writer, which also stops once its interruption is announced on stderr: a second
# signal sent then lands while the program ends.
_SLOW_WRITER_AND_ENDING = """
import sys

class Announcing:
    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        written = self.stream.write(text)
        if "interrupted by" in text:
            self.stream.flush()
            print("ending", flush=True)
            sys.stdin.read()
        return written

    def __getattr__(self, name):
        return getattr(self.stream, name)

sys.stderr = Announcing(sys.stderr)
""" + _SLOW_WRITER


def test_a_second_ctrl_c_while_ending_changes_nothing(tmp_path, model_path):
    PIL.Image.fromarray(random_rgb(6, 6)).save(tmp_path / "0.png")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(
        [sys.executable, "-c", _SLOW_WRITER_AND_ENDING, "0.png", "--scale", "2", "--model", model_path,
         "--out", str(out)], cwd=tmp_path, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline() == "writing\n"
        process.send_signal(signal.SIGINT)
        assert process.stdout.readline() == "ending\n"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    lines = [line for line in stderr.replace("\r", "\n").splitlines() if line and "it/s" not in line
             and "image/s" not in line]
    assert lines == ["cmsc-upscale: interrupted by SIGINT; the outputs written are complete, none is partial"]
    assert os.listdir(out) == []


@pytest.mark.parametrize("value", ["png/../../escaped.png", "../png", "", "exe", "png/"])
def test_format_is_one_of_a_fixed_set_of_extensions(tmp_path, model_path, capsys, value):
    PIL.Image.fromarray(random_rgb(8, 8, seed=2)).save(tmp_path / "small.png")
    out = tmp_path / "ofmt" / "a"

    code = cli.run_cli([str(tmp_path / "small.png"), "--scale", "2", "--model", model_path,
                        "--out", str(out), "--format", value])

    assert code == 2
    assert capsys.readouterr().err.startswith("cmsc-upscale: error: argument --format:")
    assert files_under(tmp_path) == ["small.png"]
    assert not (tmp_path / "ofmt").exists()


def test_format_takes_an_extension_with_a_dot_or_capitals(tmp_path, model_path):
    PIL.Image.fromarray(random_rgb(8, 8, seed=2)).save(tmp_path / "small.png")

    code = cli.run_cli([str(tmp_path / "small.png"), "--scale", "2", "--model", model_path,
                        "--out", str(tmp_path / "o"), "--format", ".JPG"])

    assert code == 0
    assert files_under(tmp_path / "o") == ["small_x2.jpg"]


def test_same_stem_inputs_each_report_their_own_error(tmp_path, model_path, capsys):
    (tmp_path / "a.bmp").write_bytes(b"BM not really a bitmap")
    PIL.Image.fromarray(random_rgb(8, 8, seed=3)).save(tmp_path / "a.png")
    PIL.Image.fromarray(random_rgb(8, 8, seed=4)).save(tmp_path / "a.jpg")
    out = tmp_path / "out"

    code = cli.run_cli([str(tmp_path / n) for n in ("a.bmp", "a.png", "a.jpg")]
                       + ["--scale", "2", "--model", model_path, "--out", str(out)])

    assert code == 1
    errors = error_lines(capsys.readouterr())
    assert errors[0].startswith(f"cmsc-upscale: error: {tmp_path / 'a.bmp'}: ") and "overwrite" not in errors[0]
    assert errors[1:] == [f"cmsc-upscale: error: {tmp_path / 'a.jpg'}: output {out / 'a_x2.png'} "
                          "would overwrite another input's result"]
    assert files_under(out) == ["a_x2.png"]


@pytest.mark.parametrize("damage", [
    lambda config: config.pop("class_name"),
    lambda config: config["config"].update(num_stages="two"),
    lambda config: config["config"].update(kernel_sizes=None),
])
def test_a_keras_file_with_a_damaged_config_is_one_line(tmp_path, model_path, capsys, damage):
    import json
    import zipfile

    damaged = tmp_path / "damaged.keras"
    with zipfile.ZipFile(model_path) as source, zipfile.ZipFile(damaged, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "config.json":
                config = json.loads(data)
                damage(config)
                data = json.dumps(config).encode()
            target.writestr(item, data)
    PIL.Image.fromarray(random_rgb(6, 6)).save(tmp_path / "a.png")

    code = cli.run_cli([str(tmp_path / "a.png"), "--scale", "2", "--model", str(damaged), "--out", str(tmp_path / "o")])

    assert code == 2
    [line] = error_lines(capsys.readouterr())
    assert line.startswith(f"cmsc-upscale: error: cannot load model: {damaged}: not a valid .keras file "
                           "(its config.json is damaged")


def test_a_savedmodel_without_the_projects_metadata_is_refused(tmp_path, capsys):
    import tensorflow as tf

    module = tf.Module()
    module.f = tf.function(lambda y: {"final": y}, input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32)])
    tf.saved_model.save(module, str(tmp_path / "foreign"), signatures={"luminance": module.f})
    PIL.Image.fromarray(random_rgb(6, 6)).save(tmp_path / "a.png")

    code = cli.run_cli([str(tmp_path / "a.png"), "--scale", "2", "--model", str(tmp_path / "foreign"),
                        "--out", str(tmp_path / "o")])

    assert code == 2
    [line] = error_lines(capsys.readouterr())
    assert line.startswith(f"cmsc-upscale: error: cannot load model: {tmp_path / 'foreign'}: a SavedModel without "
                           "cmsc_metadata.json")
    assert not (tmp_path / "o").exists()
