"""What the notebooks rely on: model choice, data folder, streamed scripts, strategy choice."""

import io
import json
import subprocess
import sys

import pytest

from cmsc_tf import colab
from cmsc_tf.deploy import loader
from training.lib import runtime


def _make_model_dirs(root, *relatives):
    for relative in relatives:
        (root / relative).mkdir(parents=True)


def test_available_model_prefers_the_trained_cmsc(tmp_path):
    _make_model_dirs(tmp_path, loader.DEFAULT_MODEL, loader.FALLBACK_MODEL)
    assert loader.available_model_path(tmp_path) == tmp_path / loader.DEFAULT_MODEL


def test_available_model_falls_back_to_vdsr(tmp_path):
    _make_model_dirs(tmp_path, loader.FALLBACK_MODEL)
    assert loader.available_model_path(tmp_path) == tmp_path / loader.FALLBACK_MODEL


def test_available_model_missing_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"neither {loader.DEFAULT_MODEL} nor {loader.FALLBACK_MODEL}"):
        loader.available_model_path(tmp_path)


def test_available_model_of_this_checkout_exists():
    # The committed public VDSR guarantees the notebooks a model.
    path = loader.available_model_path()
    assert (path / "saved_model.pb").is_file()


def test_find_data_dir(tmp_path):
    repo, shared = tmp_path / "repo", tmp_path / "shared" / "datasets"
    repo.mkdir()
    assert colab.find_data_dir(environ={}, root=repo) is None
    shared.mkdir(parents=True)
    assert colab.find_data_dir(environ={}, root=repo).resolve() == shared.resolve()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert colab.find_data_dir(environ={"CMSC_DATA_DIR": str(elsewhere)}, root=repo) == elsewhere
    with pytest.raises(FileNotFoundError, match="CMSC_DATA_DIR=.*missing is not a folder"):
        colab.find_data_dir(environ={"CMSC_DATA_DIR": str(tmp_path / "missing")}, root=repo)


class _RecordingStream(io.StringIO):
    def __init__(self):
        super().__init__()
        self.writes = 0

    def write(self, text):
        self.writes += 1
        return super().write(text)


def test_run_module_streams_output_and_returns_it(tmp_path):
    # 1 + 2 * 100000 bytes: more than one 64 KiB read, the first ending inside an "é".
    (tmp_path / "speaker.py").write_text('import sys\nprint("x" + "\\u00e9" * 100000)\nprint("done", sys.argv[1:])\n')
    out = _RecordingStream()
    output = colab.run_module("speaker", ["a", 2], out=out, env={"PYTHONPATH": str(tmp_path)})
    assert output == out.getvalue() == "x" + "\u00e9" * 100000 + "\ndone ['a', '2']\n"
    assert out.writes > 1  # echoed as it came, not once at the end


def test_run_module_failure_raises_with_output():
    out = io.StringIO()
    with pytest.raises(subprocess.CalledProcessError) as error:
        colab.run_module("training.evaluate", ["--scales=two"], out=out)
    assert error.value.returncode != 0
    assert "--scales must be integers" in error.value.output
    assert error.value.cmd[:3] == [sys.executable, "-m", "training.evaluate"]


def test_in_colab_follows_the_module(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert not colab.in_colab()
    monkeypatch.setitem(sys.modules, "google.colab", object())
    assert colab.in_colab()


def test_strategy_flags(tmp_path):
    none = ()
    assert runtime.strategy_flags(num_gpus=0, environ={}, device_files=none) == ["--strategy=default"]
    assert runtime.strategy_flags(num_gpus=1, environ={}, device_files=none) == ["--strategy=default"]
    assert runtime.strategy_flags(num_gpus=4, environ={}, device_files=none) == ["--strategy=mirrored"]
    assert runtime.strategy_flags(num_gpus=0, environ={"COLAB_TPU_ADDR": "10.0.0.2:8470"},
                                  device_files=none) == ["--strategy=tpu"]
    accel = tmp_path / "accel0"
    accel.touch()
    assert runtime.strategy_flags(num_gpus=0, environ={}, device_files=(str(accel),)) == [
        "--strategy=tpu", "--tpu=local"]
    # This machine: no TPU, and the GPUs TensorFlow sees decide.
    import tensorflow as tf

    expected = "--strategy=mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "--strategy=default"
    if not any(runtime.pathlib.Path(p).exists() for p in runtime.TPU_VM_DEVICE_FILES):
        assert runtime.strategy_flags(environ={}) == [expected]


def test_start_tensorboard_serves_and_ends_with_its_process(tmp_path):
    # In a child process standing in for a notebook kernel: the server must go when it dies,
    # even killed (no atexit handler runs).
    pytest.importorskip("tensorboard")
    psutil = pytest.importorskip("psutil")
    script = f"""
import json, os, urllib.request
import psutil
from cmsc_tf import colab
url = colab.start_tensorboard({str(tmp_path / "logs")!r})
assert colab.start_tensorboard({str(tmp_path / "logs")!r}) == url  # reused, not a second server
logdir = json.load(urllib.request.urlopen(url + "data/logdir", timeout=30))["logdir"]
children = [p.pid for p in psutil.Process().children(recursive=True)]
print("RESULT", json.dumps([url, logdir, children]), flush=True)
os.kill(os.getpid(), 9)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path)
    assert result.returncode == -9, result.stderr
    line = [x for x in result.stdout.splitlines() if x.startswith("RESULT ")][0]
    url, logdir, children = json.loads(line[len("RESULT "):])
    assert url.startswith("http://localhost:")
    assert logdir == str((tmp_path / "logs").resolve())
    processes = []
    for pid in children:
        try:
            processes.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass  # already gone
    _, alive = psutil.wait_procs(processes, timeout=10)  # e.g. the data server, --die-after-stdin
    for process in alive:
        process.kill()
    assert not alive, [p.cmdline() for p in alive]
