"""The training state on disk: model and optimizer, and the global step they belong to.

Layout in a run's model_dir:

    state.json                          {"step": 4000, "weights": "ckpt-...", "seconds": ..., ...}
    ckpt-e0008-s000004000.weights.h5    the end of epoch 8 (step 4,000): kept
    ckpt-s000004200.weights.h5          mid-epoch: removed once a newer checkpoint exists

`step` counts the batches trained since the run began, on any backend and
across phases that change the epoch length; the data source makes batch
`step` from (seed, step) alone, so training resumes at the batch it had not
trained yet. A write is crash-safe at every instant: the weights go to a new
file, then `state.json` is replaced atomically, and only then are superseded
files deleted. A kill at any point leaves a `state.json` that names a whole
weights file.

The weights file is Keras's `save_weights` file: the model's variables and the
optimizer's (iterations, learning rate, momenta), by name, in HDF5, so a run
saved on one backend resumes on another with its optimizer state.
"""

import contextlib
import errno
import fcntl
import json
import os
import pathlib
import re
import warnings

import numpy as np

import cmsc_tf
from cmsc_tf.io import atomic
from training.lib import keras_hooks

# The files of a run folder.
STATE_FILE = "state.json"
CONFIG_FILE = "config.json"
FLAGS_FILE = "flags.txt"
SUMMARY_FILE = "summary.json"
LOCK_FILE = ".lock"
LOG_FILE = "training_log.csv"
_CHECKPOINT = re.compile(r"^ckpt-(?:e(\d+)-)?s(\d+)\.weights\.h5$")
# What the fix of a run folder that cannot be resumed is, in every message that names one.
RESTART_HINT = "rerun with --restart to move the old run aside into {folder}/previous-<n>/ and start at step 0"


def config_text(fields):
    """A run's settings (a dict) as the text of its config.json."""
    return json.dumps(fields, indent=1, sort_keys=True, default=list) + "\n"


def changed_config_keys(model_dir, fields, ignore=()):
    """Keys whose value in `fields` differs from the run's config.json ([] when it has none)."""
    path = pathlib.Path(model_dir) / CONFIG_FILE
    if not path.exists():
        return []
    old, new = json.loads(path.read_text()), json.loads(config_text(fields))
    return sorted(k for k in set(old) | set(new) if k not in ignore and old.get(k) != new.get(k))


def checkpoint_name(step, epoch=None):
    """The weights file of `step`; `epoch` marks the end of an epoch (a file that is kept)."""
    return (f"ckpt-e{epoch:04d}-s{step:09d}.weights.h5" if epoch is not None
            else f"ckpt-s{step:09d}.weights.h5")


def read_state(model_dir):
    """The saved state ({"step": global step, "weights": file, ...}), or None when there is none."""
    path = pathlib.Path(model_dir) / STATE_FILE
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
        weights = state["weights"]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path} is not a training state ({error}); delete it to start over") from None
    if not (pathlib.Path(model_dir) / weights).exists():
        raise FileNotFoundError(
            f"{path} names {weights}, which is missing; the run directory "
            "was modified by hand. Delete state.json to start over.")
    return state


def save(model, model_dir, step, epoch=None, keep_epoch_checkpoints=True, **extra):
    """Saves model + optimizer as the state of global step `step`; returns the state.

    `epoch`: the step ends this epoch (1-based count of epochs done); such a
    file is kept when `keep_epoch_checkpoints`, the others are pruned.
    """
    model_dir = pathlib.Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    name = checkpoint_name(step, epoch)
    state = {**extra, "step": int(step), "weights": name}
    try:
        atomic.write_bytes(model_dir / name, keras_hooks.weights_file_bytes(model))
        atomic.write_text(model_dir / STATE_FILE, json.dumps(state, indent=1) + "\n")
    except OSError as error:  # a full disk, a file-size limit: state.json still names the last whole checkpoint
        last = (read_state(model_dir) or {}).get("weights")
        then = (f"{STATE_FILE} still names {last}, a whole checkpoint: free some space and rerun the same command "
                "to resume from it" if last else "no checkpoint was written yet: free some space and rerun")
        raise OSError(f"cannot write checkpoint {model_dir / name}: {error.strerror or error}; {then}") from None
    for path in model_dir.iterdir():
        match = _CHECKPOINT.match(path.name)
        if match and path.name != name and not (match.group(1) and keep_epoch_checkpoints):
            path.unlink()
    return state


def model_of_run(model_dir):
    """(model, config): the run's model built afresh from its config.json (variant and overrides)."""
    config = json.loads((pathlib.Path(model_dir) / CONFIG_FILE).read_text())
    return cmsc_tf.build_model(config["variant"], **config["model_overrides"]), config


def build_from_run(model_dir, weights_path):
    """(model, config): the run's model rebuilt from its config.json, with `weights_path` loaded."""
    model, config = model_of_run(model_dir)
    model.load_weights(str(weights_path))
    return model, config


class RunFolderError(ValueError):
    """A --model_dir that this trainer may not use as it is; the message says why and what to do."""


@contextlib.contextmanager
def owned_run(model_dir, restart=False):
    """Holds ``model_dir`` for one trainer, checked and swept; ``restart`` sets an old run aside first.

    * A lock (``flock`` on ``.lock``, which holds the owner's pid): a second
      trainer on the folder is refused, naming the holder. The kernel drops
      the lock when its holder dies, so a ``.lock`` left by kill -9 is
      stale and is taken over.
    * Temporary files of a killed writer (``atomic.is_temporary``) are removed.
    * A folder holding checkpoints or a training log but no ``state.json`` is
      refused: training would start at step 0, rotate the old run's
      checkpoints away and append to its log.
    """
    folder = pathlib.Path(model_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise RunFolderError(f"--model_dir={folder} cannot be created or written: {error.strerror}") from None
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            holder = os.pread(descriptor, 64, 0).decode(errors="replace").strip() or "unknown"
            raise RunFolderError(f"{folder} is in use by another trainer (pid {holder}); wait for it to end "
                                 "or choose another --model_dir") from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        for path in folder.iterdir():
            if atomic.is_temporary(path) and path.is_file():
                path.unlink()
        if restart:
            set_aside(folder)
        check_resumable(folder)
        yield folder
    finally:
        os.close(descriptor)  # releases the lock


def _run_files(folder):
    return [p for p in folder.iterdir() if _CHECKPOINT.match(p.name) or p.name in (LOG_FILE, STATE_FILE)]


def check_resumable(model_dir):
    """Raises RunFolderError when ``model_dir`` holds a run's checkpoints or log but no state.json."""
    folder = pathlib.Path(model_dir)
    if (folder / STATE_FILE).exists():
        return
    leftovers = sorted(p.name for p in _run_files(folder))
    if leftovers:
        raise RunFolderError(
            f"{folder} holds a run ({', '.join(leftovers[:3])}{', ...' if len(leftovers) > 3 else ''}) "
            f"but no {STATE_FILE}, so it cannot be resumed; " + RESTART_HINT.format(folder=folder)
            + ", or choose another --model_dir")


def set_aside(model_dir):
    """Moves the run in ``model_dir`` (checkpoints, state, log, config, TensorBoard) into ``previous-<n>/``."""
    folder = pathlib.Path(model_dir)
    names = [p.name for p in _run_files(folder)] + [
        n for n in (CONFIG_FILE, FLAGS_FILE, SUMMARY_FILE, "tensorboard") if (folder / n).exists()]
    if not names:
        return None
    number = 1
    while (folder / f"previous-{number}").exists():
        number += 1
    target = folder / f"previous-{number}"
    target.mkdir()
    # state.json first: an interrupted move never leaves a state naming a moved file.
    for name in sorted(names, key=lambda n: n != STATE_FILE):
        os.replace(folder / name, target / name)
    print(f"--restart: the previous run of {folder} is now in {target}", flush=True)
    return target


def _load_checked(model, path):
    """``model.load_weights(path)``; a damaged or non-finite file raises RunFolderError naming it and the fix."""
    try:
        model.load_weights(str(path))
    except (OSError, ValueError, KeyError) as error:  # h5py: truncated; Keras: missing or mismatched variables
        raise RunFolderError(
            f"{path}: cannot be read as this run's checkpoint ({str(error).splitlines()[0] if str(error) else type(error).__name__}): "
            f"it is damaged or truncated. Restore an intact copy, or " + RESTART_HINT.format(folder=path.parent)) from None
    if not all(np.isfinite(w).all() for w in model.get_weights()):
        raise RunFolderError(
            f"{path}: the checkpoint holds NaN or infinite weights and cannot be resumed. "
            "Restore an intact copy, or " + RESTART_HINT.format(folder=path.parent))


def restore(model, model_dir):
    """Loads the latest state into `model` and its optimizer; returns the state or None.

    The model must be compiled (so that the optimizer exists); its variables
    are created here before the weights are loaded.
    """
    state = read_state(model_dir)
    if state is None:
        return None
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    path = pathlib.Path(model_dir) / state["weights"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _load_checked(model, path)
    for warning in caught:
        if "optimizer" in str(warning.message):
            # A checkpoint of another optimizer setup (another optimizer, or a
            # model's weights alone, as a seeded run starts): the weights are
            # restored, the moments are not. Said in one line.
            print(f"note: {path.name}: optimizer state not restored, the optimizer starts afresh "
                  f"({warning.message})", flush=True)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return state


# What a run folder carries besides its weights; seed_run copies them from a run.
RUN_FILES = (CONFIG_FILE, FLAGS_FILE, LOG_FILE)
_PROGRESS_KEYS = ("seconds", "last_epoch_seconds", "budget_decay_step")


def seed_run(model_dir, source, keep_optimizer=False, keep_progress=True):
    """Starts run folder `model_dir` from `source`'s model weights, without optimizer state
    unless `keep_optimizer` (a run folder's checkpoint holds it; a .keras file does not; a
    single checkpoint's stays behind), and without the source's seconds and budget decay
    step unless `keep_progress` (a new phase counts its own time budget).

    `source`: a `.keras` file (its model.weights.h5; the run starts at step 0),
    one checkpoint of a run (a `.weights.h5` file: its model weights, never
    its optimizer's, and step 0: a fresh phase from a chosen epoch),
    or a run folder (its latest checkpoint; step, seconds and the budget's
    decay step, config.json and the logs are kept, so the run goes on where it
    stopped). The optimizer's moments are left out: a lent GPU host receives
    at most 64 MiB, and a full CMSC's Adam moments alone are 34 MB. Training
    then restores the weights and starts the optimizer afresh (`restore` says
    so in one line). Returns the state written.
    """
    import io
    import shutil
    import zipfile

    import h5py

    model_dir, source = pathlib.Path(model_dir), pathlib.Path(source)
    if read_state(model_dir) is not None:
        raise ValueError(f"{model_dir} already holds a run; seed an empty folder")
    if source.suffix == ".keras":
        try:
            with zipfile.ZipFile(source) as archive:  # read whole: h5py seeks, a deflated member seeks slowly
                weights = io.BytesIO(archive.read("model.weights.h5"))
        except (OSError, KeyError, zipfile.BadZipFile) as error:
            raise ValueError(f"{source} is not a Keras model file ({error})") from None
        state, extra = {"step": 0}, {"seeded_from": str(source)}
    elif source.name.endswith(".weights.h5"):
        if not source.is_file():
            raise ValueError(f"{source}: no such checkpoint file")
        weights, keep_optimizer = open(source, "rb"), False  # step 0 with a stale optimizer's step count would mislead
        state, extra = {"step": 0}, {"seeded_from": str(source)}
    else:
        state = read_state(source)
        if state is None:
            raise ValueError(f"{source} is neither a .keras file, a .weights.h5 checkpoint nor a run "
                             f"folder with a {STATE_FILE}")
        weights = open(source / state["weights"], "rb")
        extra = {key: state[key] for key in _PROGRESS_KEYS if key in state and keep_progress}
        if "patches_seen" in state:  # goes with the step, which a run folder's seed keeps
            extra["patches_seen"] = state["patches_seen"]
        extra["seeded_from"] = str(source / state["weights"])
    model_dir.mkdir(parents=True, exist_ok=True)
    name = checkpoint_name(state["step"])
    with weights, h5py.File(weights, "r") as read, atomic.atomic_path(model_dir / name) as temporary:
        with h5py.File(temporary, "w") as write:
            for key in read:
                if key != "optimizer" or keep_optimizer:
                    read.copy(read[key], write, name=key)
    if source.is_dir():
        for file_name in RUN_FILES:
            if (source / file_name).exists():
                shutil.copyfile(source / file_name, model_dir / file_name)
    new_state = {**extra, "step": int(state["step"]), "weights": name}
    atomic.write_text(model_dir / STATE_FILE, json.dumps(new_state, indent=1) + "\n")
    return new_state


def export_checkpoint(model_dir, export_prefix=None, formats=None, weights=None):
    """Rebuilds the run in `model_dir`, loads its latest checkpoint (or `weights`), exports it with
    :func:`cmsc_tf.deploy.export.export_model`; returns {format: path}."""
    from cmsc_tf.deploy.export import DEFAULT_FORMATS, export_model

    formats = DEFAULT_FORMATS if formats is None else formats
    model_dir = pathlib.Path(model_dir)
    state = read_state(model_dir) if weights is None else {"weights": weights}
    if state is None or not (model_dir / CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{model_dir}: no checkpoint to export (needs state.json and config.json)")
    weights_path = model_dir / state["weights"]  # an absolute `weights` stays as it is
    if not weights_path.is_file():
        raise FileNotFoundError(f"{weights_path}: no such weights file")
    model, config = build_from_run(model_dir, weights_path)
    export_prefix = export_prefix or config.get("export_prefix")
    if not export_prefix:
        raise ValueError(f"{model_dir}: the run has no export_prefix; pass --export_prefix")
    return export_model(model, export_prefix, formats)
