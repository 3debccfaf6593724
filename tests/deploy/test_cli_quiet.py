"""cmsc-upscale's own output: --help and usage errors without TensorFlow, one line; no TensorFlow start-up noise unless --tf_log."""

import subprocess
import sys

import PIL.Image
import pytest

from deploy_models import random_rgb, small_cmsc
from tests import training_helpers as helpers

# cli.main() as the console script calls it, where importing tensorflow fails;
# the last stdout line gives the exit code and the backend modules loaded.
BLOCKED_CLI = helpers.BLOCK_TENSORFLOW + """
from cmsc_tf.deploy import cli
sys.argv = ["cmsc-upscale", *sys.argv[1:]]
try:
    cli.main()
except SystemExit as exit_:
    print("exit", exit_.code, sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "jax")))
"""


def run_blocked(*args):
    return subprocess.run([sys.executable, "-c", BLOCKED_CLI, *args], cwd=helpers.REPO_ROOT,
                          env=helpers.python_env(), capture_output=True, text=True, timeout=120)


def test_help_answers_without_tensorflow_or_keras():
    result = run_blocked("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: cmsc-upscale") and "--tf_log" in result.stdout
    assert result.stdout.splitlines()[-1] == "exit 0 []"
    assert result.stderr == ""


@pytest.mark.parametrize("args, message", [
    (["a.png", "--scale", "9"], "argument --scale: scale must be between 1 and 8, got '9'"),
    (["a.png", "--scale", "2", "--bogus"], "unrecognized arguments: --bogus"),
    (["--scale", "2"], "the following arguments are required: inputs"),
    (["a.png", "--scale", "2", "--tile", "0"], "argument --tile: must be a whole number of pixels from 1 to 1024, got 0"),
    (["a.png", "--scale", "2", "--tile", "x"], "argument --tile: must be a whole number of pixels from 1 to 1024, got x"),
])
def test_usage_errors_are_one_line_before_tensorflow_loads(args, message):
    result = run_blocked(*args)
    assert result.stderr.splitlines() == [f"cmsc-upscale: error: {message}"]
    assert result.stdout.splitlines() == ["exit 2 []"]


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A folder with a.png and tiny.keras (a small CMSC: loads in a moment)."""
    folder = tmp_path_factory.mktemp("photo")
    PIL.Image.fromarray(random_rgb(8, 8)).save(folder / "a.png")
    small_cmsc().save(folder / "tiny.keras")
    return folder


def upscale(folder, *flags):
    """cmsc-upscale on a.png, from a user's shell (no TF_CPP_MIN_LOG_LEVEL)."""
    return subprocess.run(
        [sys.executable, "-c", "import sys; from cmsc_tf.deploy import cli; sys.argv[0] = 'cmsc-upscale'; cli.main()",
         "a.png", "--scale", "2", "--model", "tiny.keras", "--out", "out", *flags],
        cwd=folder, env=helpers.user_env(), capture_output=True, text=True, timeout=300)


def test_tensorflow_start_up_lines_are_hidden(photo):
    quiet = upscale(photo)
    assert quiet.returncode == 0, quiet.stderr
    assert helpers.noise_lines(quiet.stdout + quiet.stderr) == []
    assert (photo / "out" / "a_x2.png").is_file()


def test_tf_log_shows_them(photo):
    verbose = upscale(photo, "--tf_log")
    assert verbose.returncode == 0, verbose.stderr
    assert helpers.noise_lines(verbose.stderr)  # this machine prints some: no GPU, oneDNN


def test_the_int8_path_runs_litert_quietly_and_never_inside_the_progress_line(photo):
    """LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate" at its first run,
    which once landed in the middle of the progress bar; it is run once, quietly, before."""
    quiet = upscale(photo, "--precision", "dynamic_int8")
    assert quiet.returncode == 0, quiet.stderr
    assert helpers.noise_lines(quiet.stdout + quiet.stderr) == [], quiet.stderr
    assert "INFO:" not in quiet.stderr
    verbose = upscale(photo, "--precision", "dynamic_int8", "--tf_log")
    assert "Created TensorFlow Lite XNNPACK delegate" in verbose.stderr
