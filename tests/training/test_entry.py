"""The absl entry points' output (cmsc_tf/entry.py, cmsc_tf/_quiet.py): one-line usage errors,
--help without TensorFlow, no TensorFlow start-up noise unless --tf_log, errors on a line of their own."""

import io
import signal
import subprocess
import sys

import pytest

from cmsc_tf import _quiet
from tests import training_helpers as helpers
from cmsc_tf import entry

ENTRY_POINTS = ("training.main", "training.export", "training.evaluate", "training.claims", "training.plot_curves")

# `python -m MODULE ARGS` where importing tensorflow fails.
BLOCKED_MODULE = helpers.BLOCK_TENSORFLOW + """
import runpy
module, *args = sys.argv[1:]
sys.argv = [module, *args]
runpy.run_module(module, run_name="__main__")
"""


# `python -m training.main ARGS` on a machine without JAX.
WITHOUT_JAX = """
import runpy, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("jax", "jaxlib"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Block())
sys.argv = ["training.main", *sys.argv[1:]]
runpy.run_module("training.main", run_name="__main__")
"""


def test_a_backend_that_is_not_installed_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-c", WITHOUT_JAX, *helpers.tiny_flags(tmp_path / "run")],
                            cwd=helpers.REPO_ROOT, env=helpers.python_env("jax"), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "training.main: error: cannot import jax (No module named 'jax'), which KERAS_BACKEND=jax needs: install it "
        "(pip install -e '.[jax]' for JAX) or choose another KERAS_BACKEND"]
    assert not (tmp_path / "run").exists()


def run_blocked(module, *args):
    return subprocess.run([sys.executable, "-c", BLOCKED_MODULE, module, *args], cwd=helpers.REPO_ROOT,
                          env=helpers.python_env(), capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("module, args, message", [
    ("training.main", ["--bogus"], "Unknown command line flag 'bogus'"),
    ("training.main", ["--epochs=x"], "flag --epochs=x: invalid literal for int() with base 10: 'x'"),
    ("training.main", ["--scales=2,x"], "--scales must be a list of integers, got 2,x"),
    ("training.main", ["stray"], "unexpected arguments: stray"),
    ("training.export", ["--bogus"], "Unknown command line flag 'bogus'"),
    ("training.export", [], "give exactly one of --model_dir and --keras_model"),
    ("training.evaluate", ["--scales=a"], "--scales must be integers, got ['a']"),
    ("training.evaluate", ["--flagfile=/nonexistent.flags"],
     "Unable to open flagfile: [Errno 2] No such file or directory: '/nonexistent.flags'"),
    ("training.claims", ["--study=nope"], "flag --study=nope: value should be one of <cascade|clipping|fig5|recipe>"),
    ("training.claims", ["--arms=NOPE"], "unknown arms for fig5: NOPE"),
    ("training.plot_curves", ["--bogus"], "Unknown command line flag 'bogus'"),
    ("training.plot_curves", [], "--runs is empty"),
])
def test_usage_errors_are_one_line_and_exit_2_before_tensorflow_loads(module, args, message):
    result = run_blocked(module, *args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [f"{module}: error: {message}"]
    assert result.stdout == ""


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_help_answers_without_tensorflow(module):
    result = run_blocked(module, "--help")
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    assert f"USAGE: {module} [flags]" in result.stdout and f"\n{module}:\n  --" in result.stdout


def test_a_setting_refused_after_loading_is_one_quiet_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "training.main", "--batch_size=0", f"--model_dir={tmp_path}"],
                            cwd=helpers.REPO_ROOT, env=helpers.user_env(), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["training.main: error: batch_size must be >= 1"]
    assert result.stdout == ""


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_tensorflow_start_up_lines_hidden_unless_tf_log(tmp_path, backend):
    if backend == "jax":
        pytest.importorskip("jax")

    def export(name, *flags):
        return subprocess.run(
            [sys.executable, "-m", "training.export", "--keras_model=savedmodels/cmsc_compact.keras",
             f"--export_prefix={tmp_path / name}", "--formats=keras", *flags],
            cwd=helpers.REPO_ROOT, env=helpers.user_env(backend), capture_output=True, text=True, timeout=300)

    quiet = export("quiet")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout.splitlines() == [f"keras: {tmp_path / 'quiet'}.keras"]
    assert quiet.stderr == ""  # no C++ lines, no Python INFO of TensorFlow or JAX
    loud = export("loud", "--tf_log")
    assert loud.returncode == 0, loud.stderr
    assert helpers.noise_lines(loud.stderr)  # this machine prints some: no GPU, oneDNN


def test_drop_noise_keeps_everything_but_the_start_up_lines():
    noise = [
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
        "I0000 00:00:1796026683.731488    1068 port.cc:153] oneDNN custom operations are on.\n",
        "I0000 00:00:1796026683.731976    1068 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
        "GPU will not be used.\n",
        "I0000 00:00:1796026683.790844    1068 cpu_feature_guard.cc:227] This TensorFlow binary is optimized.\n",
        "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the "
        "appropriate compiler flags.\n",
        "W0507 10:11:12.131415    1068 tf_tfl_flatbuffer_helpers.cc:364] Ignored output_format.\n",
    ]
    cuinit = ("E0000 00:00:1796026687.490844    1068 cuda_platform.cc:52] failed call to cuInit: INTERNAL: "
              "CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n")
    kept = [
        "/x/site-packages/tensorflow/__init__.py:1: UserWarning: a Python warning\n",
        "E0000 00:00:1796026687.490844    1068 bfc_allocator.cc:12] Out of memory\n",
        "Traceback (most recent call last):\n",
    ]
    text = "".join([noise[0], kept[0], *noise[1:], cuinit, *kept[1:]])
    assert _quiet.drop_noise(text) == "".join(kept)
    # cuInit failing where a CUDA driver was found is an error worth seeing.
    assert _quiet.drop_noise(cuinit) == cuinit
    assert _quiet.drop_noise(cuinit, no_cuda_driver=True) == ""


def test_fresh_line_ends_a_progress_bar_line(monkeypatch):
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    entry.track_lines()
    print("Epoch 1/2")
    sys.stdout.write("\r 3/6 ━━━━━━━━━━ 0s 5ms/step - loss: 0.5\b\b")
    entry.fresh_line()
    entry.fresh_line()  # nothing left open: no blank line
    print("error: it failed", file=sys.stderr)
    assert out.getvalue().endswith("loss: 0.5\b\b\n") and err.getvalue() == "error: it failed\n"


def test_a_nan_stop_after_a_progress_bar_starts_its_own_line(tmp_path):
    """--verbose=1, stdout and stderr in one stream: the error line starts a line (and nothing is noise)."""
    nan = subprocess.run(
        [sys.executable, "-m", "training.main", *helpers.tiny_flags(
            tmp_path / "nan", optimizer="sgd", learning_rate=1e38, steps_per_epoch=6, epochs=2, verbose=1,
            checkpoint_every_steps=0)],
        cwd=helpers.REPO_ROOT, env=helpers.user_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=300)
    assert nan.returncode == 1, nan.stdout[-3000:]
    lines = nan.stdout.split("\n")
    assert any(line.startswith("training.main: error: the loss became NaN/inf") for line in lines), nan.stdout[-3000:]
    assert helpers.noise_lines(nan.stdout) == []


def test_ctrl_c_mid_epoch_is_one_line_of_its_own_after_the_open_progress_bar(tmp_path):
    """Keras leaves its bar mid-line when interrupted; the message still starts a line; exit 130.

    The run pauses after step 9 (epoch 2 of 6 steps, its bar open) and is interrupted there."""
    flags = helpers.tiny_flags(tmp_path / "interrupted", epochs=2, steps_per_epoch=6, checkpoint_every_steps=3,
                               verbose=1)
    with helpers.PausedRun(flags, 9, tmp_path / "output.txt", env=helpers.user_env()) as run:
        assert run.announced == "9", run.output.read_text()[-3000:]
        run.process.send_signal(signal.SIGINT)
        output = run.finish(timeout=120)
    assert run.process.returncode == 130, output[-3000:]
    lines = output.split("\n")
    assert ("training.main: interrupted; rerun the same command to resume from the last checkpoint in "
            "--model_dir") in lines, output[-3000:]
    assert any(line.startswith("Epoch 2/2") for line in lines), output[-3000:]  # the bar it interrupted
    assert "Traceback" not in output and helpers.noise_lines(output) == []
