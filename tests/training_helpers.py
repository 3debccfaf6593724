"""Shared pieces of the training tests: a tiny configuration and subprocess helpers."""

import contextlib
import os
import pathlib
import select
import socket
import subprocess
import sys

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

# The start of a `python -c` program that runs as on a machine without TensorFlow:
# every import of tensorflow fails.
BLOCK_TENSORFLOW = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError("tensorflow is blocked in this test")
sys.meta_path.insert(0, Block())
"""

# Likewise for a machine with neither TensorFlow nor Keras (the default inference path's needs).
BLOCK_TENSORFLOW_AND_KERAS = BLOCK_TENSORFLOW.replace(
    'if name == "tensorflow" or name.startswith("tensorflow."):',
    'if name.split(".")[0] in ("tensorflow", "keras"):').replace("tensorflow is blocked", "tensorflow/keras blocked")
assert BLOCK_TENSORFLOW_AND_KERAS != BLOCK_TENSORFLOW

# A model small enough for a few steps in seconds on 2 CPU cores.
TINY_OVERRIDES = "num_features=8,num_stages=2,num_modules=1,reconstruction_initializer=zeros"


def tiny_flags(model_dir, **changes):
    """Command-line flags of a tiny random-crop run on the skimage photographs."""
    flags = {
        "variant": "cmsc", "model_overrides": TINY_OVERRIDES, "train_sets": "skimage_train",
        "val_set": "", "pipeline": "random_crop", "scales": "2,3,4", "patch_size": 21,
        "batch_size": 4, "steps_per_epoch": 6, "epochs": 2, "optimizer": "adam",
        "learning_rate": 1e-3, "lr_decay_epochs": "", "weight_decay": 0, "clip": "none",
        "checkpoint_every_steps": 2, "model_dir": model_dir, "export_prefix": "",
        "tensorboard": False, "verbose": 2,
    }
    flags.update(changes)
    return [f"--{k}={v}" if not isinstance(v, bool) else (f"--{k}" if v else f"--no{k}")
            for k, v in flags.items()]


def python_env(backend="tensorflow"):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1", KERAS_BACKEND=backend)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


# What TensorFlow prints while it loads on a machine without a GPU (the C++
# start-up lines that the entry points hide unless --tf_log).
TENSORFLOW_NOISE = ("cpu_feature_guard", "cudart_stub", "cuInit", "oneDNN",
                    "All log messages before absl::InitializeLog",
                    "Created TensorFlow Lite XNNPACK delegate")  # LiteRT, on the int8 default's first run


def noise_lines(text):
    return [line for line in text.splitlines() if any(noise in line for noise in TENSORFLOW_NOISE)]


def user_env(backend="tensorflow"):
    """python_env without TF_CPP_MIN_LOG_LEVEL: the environment of a user's shell."""
    env = python_env(backend)
    env.pop("TF_CPP_MIN_LOG_LEVEL")
    return env


def run_main(flags, timeout, backend="tensorflow", env=None):
    """`python -m training.main FLAGS` from the repository root, on a Keras backend
    (`env`: variables added to the environment)."""
    return subprocess.run([sys.executable, "-m", "training.main", *flags], cwd=REPO_ROOT,
                          env={**python_env(backend), **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


class PausedRun:
    """`python -m training.main FLAGS` stopped by the trainer's test hook (training/lib/callbacks.py,
    PauseAtStep) after global step `step` and its checkpoint.

    `announced` is the step the run announced ("" if it ended first). While paused
    the run waits for `resume()`; a signal sent meanwhile arrives at that point.
    stdout and stderr go to the file `output` (a pipe left unread could block the run).
    """

    def __init__(self, flags, step, output, env=None):
        announce_read, announce_write = os.pipe()
        resume_read, self._resume = os.pipe()
        self.output = pathlib.Path(output)
        with open(self.output, "w") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "training.main", *flags], cwd=REPO_ROOT,
                env={**(env or python_env()), "CMSC_TEST_PAUSE": f"{step},{announce_write},{resume_read}"},
                stdout=sink, stderr=subprocess.STDOUT, pass_fds=(announce_write, resume_read))
        os.close(announce_write)
        os.close(resume_read)
        with os.fdopen(announce_read) as announcements:
            # A guard against a hung run, not a synchronisation: the line or the end of
            # file (the run exited) comes first in any run that works.
            if not select.select([announcements], [], [], 600)[0]:
                self.process.kill()
            self.announced = announcements.readline().strip()

    def resume(self):
        if self._resume is not None:
            os.close(self._resume)
            self._resume = None

    def finish(self, timeout):
        """Resumes the run, waits for it and returns its output."""
        self.resume()
        self.process.wait(timeout=timeout)
        return self.output.read_text()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.resume()
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def h5_arrays(path):
    """Every array of a Keras weights file (model and optimizer), by its path in the file."""
    import h5py

    arrays = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, item: arrays.__setitem__(name, item[()])
                     if isinstance(item, h5py.Dataset) else None)
    return arrays


def final_weights(model_dir):
    """The arrays of the checkpoint a run's state.json names."""
    import json

    state = json.loads((pathlib.Path(model_dir) / "state.json").read_text())
    return h5_arrays(pathlib.Path(model_dir) / state["weights"])


@contextlib.contextmanager
def reserved_ports(count):
    """`count` localhost ports held for servers that bind them with SO_REUSEADDR (gRPC's, so
    TensorFlow's multi-worker servers do).

    Each is bound here with SO_REUSEADDR and stays bound, never listening, until
    the block ends: the kernel lends it to no other bind or outgoing connection,
    and Linux lets a second SO_REUSEADDR socket bind a port whose other sockets
    are not listening. No gap between choosing a port and the server binding it.
    """
    sockets = []
    try:
        for _ in range(count):
            held = socket.socket()
            sockets.append(held)
            held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            held.bind(("127.0.0.1", 0))
        yield [held.getsockname()[1] for held in sockets]
    finally:
        for held in sockets:
            held.close()
