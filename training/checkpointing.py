"""The training state on disk: weights + optimizer, and where in training they are.

Layout in the run's model_dir:

    state.json                      {"epoch": e, "step": k, "weights": "ckpt-....weights.h5", ...}
    ckpt-e0003-s000000.weights.h5   end of epoch 3 (= start of epoch 3, step 0): kept
    ckpt-e0003-s000500.weights.h5   mid-epoch: removed once a newer checkpoint exists

`epoch`/`step` say where training resumes: epoch `e` (0-based), after its
first `k` batches. A write is crash-safe at every instant: the weights go to
their own new file, then `state.json` is replaced atomically (write to a temp
file, `os.replace`), and only then are superseded mid-epoch files deleted. A
kill at any point leaves a `state.json` that names a complete weights file.

The weights file is Keras's `model.save_weights` file, which holds the
optimizer's variables too (iterations, momenta), so the learning-rate schedule
and momentum continue exactly.
"""

import json
import pathlib
import re
import warnings

import cmsc_tf
from cmsc_tf.io import atomic

STATE_FILE = "state.json"
_CKPT = re.compile(r"^ckpt-e(\d+)-s(\d+)\.weights\.h5$")


def config_text(fields):
    """A run's settings (a dict) as the text of its config.json."""
    return json.dumps(fields, indent=1, sort_keys=True, default=list) + "\n"


def changed_config_keys(model_dir, fields, ignore=()):
    """Keys whose value in `fields` differs from the run's config.json ([] when it has none)."""
    path = pathlib.Path(model_dir) / "config.json"
    if not path.exists():
        return []
    old, new = json.loads(path.read_text()), json.loads(config_text(fields))
    return sorted(k for k in set(old) | set(new) if k not in ignore and old.get(k) != new.get(k))


def checkpoint_name(epoch, step):
    return f"ckpt-e{epoch:04d}-s{step:06d}.weights.h5"


def write_atomically(path, text):
    """Writes `text` to `path` through a temp file and a rename (never half-written)."""
    atomic.write_text(path, text)


def read_state(model_dir):
    """The saved state dict, or None when the run has no checkpoint yet."""
    path = pathlib.Path(model_dir) / STATE_FILE
    if not path.exists():
        return None
    state = json.loads(path.read_text())
    if not (pathlib.Path(model_dir) / state["weights"]).exists():
        raise FileNotFoundError(
            f"{path} names {state['weights']}, which is missing; the run directory "
            "was modified by hand. Delete state.json to start over.")
    return state


def save(model, model_dir, epoch, step, keep_epoch_checkpoints=True, **extra):
    """Saves model + optimizer as the state "resume at epoch `epoch`, after `step` batches"."""
    model_dir = pathlib.Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    name = checkpoint_name(epoch, step)
    with atomic.atomic_path(model_dir / name) as tmp:  # keeps Keras's .weights.h5 suffix
        model.save_weights(tmp)
    state = {"epoch": int(epoch), "step": int(step), "weights": name, **extra}
    write_atomically(model_dir / STATE_FILE, json.dumps(state, indent=1) + "\n")
    _prune(model_dir, keep=name, keep_epoch_checkpoints=keep_epoch_checkpoints)
    return state


def _prune(model_dir, keep, keep_epoch_checkpoints):
    for path in model_dir.iterdir():
        match = _CKPT.match(path.name)
        if not match or path.name == keep:
            continue
        epoch_boundary = int(match.group(2)) == 0
        if not (epoch_boundary and keep_epoch_checkpoints):
            path.unlink()


def build_from_run(model_dir, weights_path):
    """(model, config): the run's model rebuilt from its config.json (variant and overrides), with `weights_path` loaded."""
    config = json.loads((pathlib.Path(model_dir) / "config.json").read_text())
    model = cmsc_tf.build_model(config["variant"], **config["model_overrides"])
    model.load_weights(str(weights_path))
    return model, config


def restore(model, model_dir):
    """Loads the latest state into `model` (and its optimizer); returns the state or None.

    The model must be compiled (so that the optimizer exists); its optimizer
    variables are created here if needed, before the weights are loaded.
    """
    state = read_state(model_dir)
    if state is None:
        return None
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    path = pathlib.Path(model_dir) / state["weights"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.load_weights(str(path))
    for warning in caught:
        if "optimizer" in str(warning.message):
            # A checkpoint of another trainer (training.main's Adam has no
            # learning-rate variable, jax_lib's has): the weights are restored,
            # the moments are not. Said in one line rather than Keras's warning.
            print(f"note: {path.name}: optimizer state not restored, the optimizer starts afresh "
                  f"({warning.message})", flush=True)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return state
