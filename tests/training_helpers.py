"""Shared pieces of the training tests: a tiny configuration and subprocess helpers."""

import os
import pathlib
import socket
import subprocess
import sys

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

# A model small enough for a few steps in seconds on 2 CPU cores.
TINY_OVERRIDES = "num_features=8,num_stages=2,num_modules=1,reconstruction_initializer=zeros"


def tiny_flags(model_dir, tfds_dir, **changes):
    """Command-line flags of a tiny random-crop run on the skimage photographs."""
    flags = {
        "variant": "cmsc", "model_overrides": TINY_OVERRIDES, "train_sets": "skimage_train",
        "val_set": "", "pipeline": "random_crop", "scales": "2,3,4", "patch_size": 21,
        "crops_per_image": 4, "shuffle_buffer": 32, "batch_size": 4, "steps_per_epoch": 6,
        "epochs": 2, "optimizer": "adam", "learning_rate": 1e-3, "weight_decay": 0,
        "clip_value": 0, "checkpoint_every_steps": 2, "model_dir": model_dir,
        "export_dir": "", "tensorboard": False, "verbose": 2, "tfds_dir": tfds_dir,
    }
    flags.update(changes)
    return [f"--{k}={v}" if not isinstance(v, bool) else (f"--{k}" if v else f"--no{k}")
            for k, v in flags.items()]


def python_env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def run_main(flags, timeout, **kwargs):
    """`python -m training.main FLAGS` from the repository root."""
    return subprocess.run([sys.executable, "-m", "training.main", *flags], cwd=REPO_ROOT,
                          env=python_env(), capture_output=True, text=True, timeout=timeout,
                          **kwargs)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
