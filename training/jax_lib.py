"""Training on any Keras backend, without TensorFlow: for GPU machines that have JAX only.

`train_lib` trains under `tf.distribute` with a `tf.data` pipeline. This module
trains the same model (`cmsc_tf.build_model`, the loss of Eq. 8) with plain
`model.fit` on whatever backend `KERAS_BACKEND` names, fed by NumPy. It exists
for accelerator machines where TensorFlow is not installed but JAX is (a
Keras wheel is all that has to travel); see docs/training.md.

Data: the training images as uint8 luminance in one `.npz` (written here, with
TensorFlow, by `python -m training.pack_luminance`). `PairSource` makes the
random-crop pairs of `training.pipeline` in NumPy:
- the 3 size variants of each image (1, 0.7, 0.5; rounded to uint8 levels)
  and their degradations at each scale (modcrop, `imresize` by 1/s then s,
  float64, whole image) are computed once, up front;
- a crop is (image, size variant, scale, position) drawn uniformly, then
  rotated by k quarter turns and flipped, which gives the 24 variants. The
  tf.data pipeline rotates before it modcrops and degrades. Where modcrop
  drops nothing the two orders give identical pairs (bicubic resizing of such
  an image commutes with flips and quarter turns; tested); where it drops
  rows or columns, they drop them at different edges, so the pairs are the
  same in distribution, not one for one.
Every batch is a function of (seed, step) alone, so a resumed run sees the
batches it had not trained on yet; steps are counted in `state.json`
(`steps_done`), also across phases that change the epoch length.

Checkpoints use `training.checkpointing` (the weights file holds the optimizer
too), with the same `config.json` keys that `training.export` reads, so a run
made here is exported, evaluated and resumed like any other.
"""

import dataclasses
import json
import pathlib
import time

import keras
import numpy as np

import cmsc_tf
from cmsc_tf.io import atomic
from cmsc_tf.numerics.imresize_np import imresize_np
from training import checkpointing, curves
from training.augmentation import DOWNSCALES, PATCH_SIZE, luminance_images
from training.batch_norm import recalibrate_batch_norm

# Batches for BN recalibration are drawn at steps from here on, which no training run reaches.
CALIBRATION_STEP = 2**40
SUMMARY_FILE = "summary.json"
LOG_FILE = "training_log.csv"


# ----------------------------------------------------------------------------
# The packed luminance images.


def save_luminance(path, images, names=None):
    """Writes uint8 [H, W] luminance images to one compressed `.npz` (atomically)."""
    images = luminance_images(images)
    arrays = {f"y{i:05d}": y for i, y in enumerate(images)}
    arrays["names"] = np.asarray(names if names is not None else [str(i) for i in range(len(images))])
    with atomic.atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            np.savez_compressed(handle, **arrays)
    return pathlib.Path(path)


def load_luminance(path):
    """The images written by `save_luminance`, in order."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such luminance file (make one with "
                                "python -m training.pack_luminance)")
    try:
        with np.load(path) as packed:
            keys = sorted(k for k in packed.files if k.startswith("y"))
            images = [packed[k] for k in keys]
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a luminance .npz ({error})") from None
    if not images or any(y.ndim != 2 or y.dtype != np.uint8 for y in images):
        raise ValueError(f"{path}: expected uint8 [H, W] arrays y00000, y00001, ...")
    return images


# ----------------------------------------------------------------------------
# Training pairs in NumPy.


def size_variant(y, factor):
    """Image `y` (uint8) shrunk by `factor` in float and rounded back to uint8 levels."""
    if factor == 1.0:
        return y
    return np.clip(np.floor(imresize_np(y.astype(np.float64), scale=factor) + 0.5), 0, 255).astype(np.uint8)


def degraded_pair(y, scale):
    """(LR-up, HR) float32 [H', W'] of a uint8 image: modcrop, then imresize 1/s and s."""
    height, width = y.shape
    hr = y[:height - height % scale, :width - width % scale].astype(np.float64) / 255.0
    lr = imresize_np(imresize_np(hr, scale=1.0 / scale), scale=float(scale))
    return lr.astype(np.float32), hr.astype(np.float32)


def orient(patch, quarter_turns, flipped):
    """The patch rotated counter-clockwise (as tf.image.rot90) then flipped left-right."""
    patch = np.rot90(patch, quarter_turns)
    return patch[:, ::-1] if flipped else patch


class PairSource:
    """Random (LR-up, HR) 41x41 crops of the 24 variants at the given scales."""

    def __init__(self, images, scales=(2, 3, 4), patch_size=PATCH_SIZE, augment=True, seed=0):
        if not scales or any(int(s) != s or s < 2 for s in scales):
            raise ValueError(f"scales must be integers >= 2, got {scales!r}")
        self.scales = tuple(int(s) for s in scales)
        self.patch_size = int(patch_size)
        self.augment = bool(augment)
        self.seed = int(seed)
        factors = DOWNSCALES if augment else (1.0,)
        # pairs[scale]: (lr, hr) of every image x size variant big enough for a patch.
        # A scale listed twice is drawn twice as often (as in training.pipeline).
        self.pairs = {scale: [] for scale in self.scales}
        for y in images:
            for factor in factors:
                variant = size_variant(y, factor)
                for scale in self.pairs:
                    lr, hr = degraded_pair(variant, scale)
                    if min(hr.shape) >= self.patch_size:
                        self.pairs[scale].append((lr, hr))
        empty = [s for s in self.pairs if not self.pairs[s]]
        if empty:
            raise ValueError(f"no training image is at least {self.patch_size} pixels at scale(s) {empty}")

    def batch(self, step, batch_size):
        """Batch `step`: (lr, hr) float32 [batch_size, size, size, 1], a function of (seed, step)."""
        lr, hr, _ = self.batch_and_scales(step, batch_size)
        return lr, hr

    def batch_and_scales(self, step, batch_size):
        """`batch(step, batch_size)` and the scale of each of its pairs (int [batch_size])."""
        rng = np.random.default_rng([self.seed, int(step)])
        size = self.patch_size
        lrs, hrs, scales = [], [], []
        for _ in range(batch_size):
            scale = self.scales[rng.integers(len(self.scales))]
            scales.append(scale)
            lr, hr = self.pairs[scale][rng.integers(len(self.pairs[scale]))]
            top = rng.integers(hr.shape[0] - size + 1)
            left = rng.integers(hr.shape[1] - size + 1)
            turns, flipped = (rng.integers(4), rng.integers(2)) if self.augment else (0, 0)
            lrs.append(orient(lr[top:top + size, left:left + size], turns, flipped))
            hrs.append(orient(hr[top:top + size, left:left + size], turns, flipped))
        return np.stack(lrs)[..., None], np.stack(hrs)[..., None], np.asarray(scales)


class _Batches(keras.utils.PyDataset):
    """`steps` batches of a PairSource starting at global step `first_step`.

    With `scale_loss_weights` ({scale: weight}), each batch also carries each
    pair's weight as Keras's sample weight, which multiplies that pair's term
    of Eq. 8 at every output.
    """

    def __init__(self, source, batch_size, first_step, steps, scale_loss_weights=None, **kwargs):
        super().__init__(**kwargs)
        self.source, self.batch_size = source, batch_size
        self.first_step, self.steps = first_step, steps
        self.scale_loss_weights = scale_loss_weights

    def __len__(self):
        return self.steps

    def __getitem__(self, index):
        lr, hr, scales = self.source.batch_and_scales(self.first_step + index, self.batch_size)
        if not self.scale_loss_weights:
            return lr, hr
        weights = np.asarray([self.scale_loss_weights[s] for s in scales], np.float32)
        return lr, hr, weights


# ----------------------------------------------------------------------------
# The run.


@dataclasses.dataclass(frozen=True)
class JaxTrainConfig:
    """A training run (flags of training.jax_main)."""

    luminance: str
    model_dir: str
    variant: str = "cmsc"
    model_overrides: dict = dataclasses.field(default_factory=dict)
    scales: tuple = (2, 3, 4)
    augment: bool = True
    batch_size: int = 64
    steps_per_epoch: int = 250
    epochs: int = 100
    learning_rate: float = 1e-3
    lr_decay_at_epochs: tuple = ()
    lr_decay_factor: float = 0.1
    loss_pixel_reduction: str = "sum"
    precision: str = "float32"
    time_budget_s: float = 0.0
    decay_at_budget_fraction: float = 0.0
    bn_recalibration_batches: int = 0
    # {scale: weight}: a pair's loss term is multiplied by its scale's weight
    # (empty: all 1, the paper's loss). Mixed-scale training spends its
    # gradient where the error is largest (x4); this moves it to other scales.
    scale_loss_weights: dict = dataclasses.field(default_factory=dict)
    export_dir: str = ""
    seed: int = 0

    def validate(self):
        if not self.luminance:
            raise ValueError("no luminance file given (--luminance; make one with python -m training.pack_luminance)")
        if self.batch_size < 1 or self.steps_per_epoch < 1 or self.epochs < 1:
            raise ValueError("batch_size, steps_per_epoch and epochs must be positive")
        if self.bn_recalibration_batches < 0:
            raise ValueError("bn_recalibration_batches must be >= 0")
        if not self.learning_rate > 0 or not self.lr_decay_factor > 0:
            raise ValueError("learning_rate and lr_decay_factor must be positive")
        if self.time_budget_s < 0:
            raise ValueError(f"time_budget_s must be >= 0 (0: no limit), got {self.time_budget_s}")
        if not 0.0 <= self.decay_at_budget_fraction < 1.0:
            raise ValueError("decay_at_budget_fraction must lie in [0, 1)")
        if self.decay_at_budget_fraction and not self.time_budget_s:
            raise ValueError("decay_at_budget_fraction needs time_budget_s")
        if self.scale_loss_weights:
            missing = sorted(set(self.scales) - set(self.scale_loss_weights))
            if missing:
                raise ValueError(f"scale_loss_weights has no weight for scale(s) {missing}")
            if not all(np.isfinite(w) and w > 0 for w in self.scale_loss_weights.values()):
                raise ValueError(f"scale_loss_weights must be positive, got {self.scale_loss_weights}")
        if self.precision not in ("float32", "mixed_float16", "mixed_bfloat16"):
            raise ValueError(f"unknown precision {self.precision!r}")


def learning_rate_at(config, epoch, decayed_at_epoch=None):
    """Rate of epoch `epoch`: multiplied by the factor at each decay epoch passed (and at the budget decay)."""
    decays = sum(1 for boundary in config.lr_decay_at_epochs if epoch >= boundary)
    if decayed_at_epoch is not None and epoch >= decayed_at_epoch:
        decays += 1
    return config.learning_rate * config.lr_decay_factor ** decays


class TrainingError(RuntimeError):
    pass


def _append_log(path, epoch, step, rate, seconds, logs):
    row = {"epoch": epoch, "step": step, "learning_rate": rate, "seconds": seconds}
    curves.append_row(path, {**row, **{k: logs[k] for k in sorted(logs)}})


def _train_epochs(model, source, config, state, clock):
    """Epochs state["epoch"].. of `config.epochs`, one `fit` call each; checkpoints every epoch.

    With `bn_recalibration_batches`, each epoch ends by recomputing the BN
    statistics over that many fixed batches (`training.batch_norm`), before
    the checkpoint.

    One `fit` per epoch (rather than one `fit` over all) keeps each epoch's
    batches tied to its steps, and lets the rate change between epochs on any
    backend (JAX writes the training state back into the variables only when
    a `fit` ends). `clock` (seconds) measures the time budget.
    """
    calibration = [source.batch(CALIBRATION_STEP + i, config.batch_size)
                   for i in range(config.bn_recalibration_batches)]
    started = clock()
    seconds_before = float(state.get("seconds", 0.0))
    # The last epoch's duration predicts the next one's (kept across resumes).
    last_epoch_seconds = float(state.get("last_epoch_seconds", 0.0))
    budget = config.time_budget_s
    for epoch in range(int(state["epoch"]), config.epochs):
        elapsed = seconds_before + clock() - started
        if budget and elapsed + last_epoch_seconds > budget:
            print(f"time budget of {budget:.0f} s reached after {elapsed:.0f} s", flush=True)
            break
        if (budget and config.decay_at_budget_fraction and "budget_decay_epoch" not in state
                and elapsed >= config.decay_at_budget_fraction * budget):
            state["budget_decay_epoch"] = epoch
        rate = learning_rate_at(config, epoch, state.get("budget_decay_epoch"))
        model.optimizer.learning_rate.assign(rate)
        epoch_started = clock()
        # Batches continue from the steps done, also across phases with other epoch lengths.
        first_step = state.get("steps_done", epoch * config.steps_per_epoch)
        batches = _Batches(source, config.batch_size, first_step, config.steps_per_epoch,
                           config.scale_loss_weights, workers=4, use_multiprocessing=False)
        # shuffle=False: Keras would otherwise permute the batches, from a global random state.
        history = model.fit(batches, epochs=1, shuffle=False, verbose=0)
        logs = {name: float(values[-1]) for name, values in history.history.items()}
        if not np.isfinite(logs.get("loss", np.nan)):
            kept = (f"the checkpoint of epoch {epoch} in {config.model_dir} is kept" if epoch
                    else "no checkpoint was written")
            raise TrainingError(f"epoch {epoch}: the loss is {logs.get('loss')}; {kept} "
                                "(lower the learning rate)")
        if calibration:
            recalibrate_batch_norm(model, calibration)
        last_epoch_seconds = clock() - epoch_started
        state["last_epoch_seconds"] = last_epoch_seconds
        state["seconds"] = seconds_before + clock() - started
        # Counted, not derived from the epoch: a later phase may change the epoch length or batch.
        state["steps_done"] = state.get("steps_done", epoch * config.steps_per_epoch) + config.steps_per_epoch
        state["patches_seen"] = (state.get("patches_seen", epoch * config.steps_per_epoch * config.batch_size)
                                 + config.steps_per_epoch * config.batch_size)
        extra = {k: v for k, v in state.items() if k not in ("epoch", "step", "weights")}
        state.update(checkpointing.save(model, config.model_dir, epoch + 1, 0,
                                        keep_epoch_checkpoints=False, **extra))
        _append_log(pathlib.Path(config.model_dir) / LOG_FILE, epoch, state["steps_done"], rate,
                    state["seconds"], logs)
        print(f"epoch {epoch}: step {state['steps_done']}, loss {logs['loss']:.5g}, "
              f"lr {rate:g}, {state['seconds']:.0f} s ({last_epoch_seconds:.1f} s)", flush=True)


def _write_config(model_dir, config):
    """Writes config.json; says which settings a resumed run changes (a new phase, or a mistake)."""
    fields = dict(dataclasses.asdict(config), backend=keras.backend.backend())
    changed = checkpointing.changed_config_keys(model_dir, fields)
    if changed:
        print(f"warning: {model_dir} was trained with other settings; changed: {', '.join(changed)}",
              flush=True)
    atomic.write_text(model_dir / "config.json", checkpointing.config_text(fields))


def build_and_compile(config):
    model = cmsc_tf.build_model(config.variant, **config.model_overrides)
    loss = cmsc_tf.cascade_loss(model, pixel_reduction=config.loss_pixel_reduction)
    model.compile(keras.optimizers.Adam(config.learning_rate), **loss)
    return model


def run(config, flags_text=None, clock=time.monotonic):
    """Trains (or resumes) the run in `config.model_dir`; returns its summary dict.

    `clock` is what the time budget is measured with (a test passes a fake one).
    """
    config.validate()
    model_dir = pathlib.Path(config.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    previous_policy = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(config.precision)
    try:
        # The data first: a bad file fails before minutes of model building.
        source = PairSource(load_luminance(config.luminance), config.scales, augment=config.augment,
                            seed=config.seed)
        keras.utils.set_random_seed(config.seed)
        model = build_and_compile(config)
        state = checkpointing.restore(model, model_dir) or {"epoch": 0, "step": 0}
        if state.get("step", 0):
            raise ValueError(f"{model_dir}: mid-epoch checkpoints are not made by this trainer")
        first_epoch = int(state["epoch"])
        _write_config(model_dir, config)
        if flags_text is not None:
            atomic.write_text(model_dir / "flags.txt", flags_text)
        print(f"{keras.backend.backend()} backend; {model.count_params():,} parameters; "
              f"{sum(len(p) for p in source.pairs.values())} degraded images; "
              f"starting at epoch {first_epoch}", flush=True)
        _train_epochs(model, source, config, state, clock)
        state = checkpointing.read_state(model_dir)
        summary = {"backend": keras.backend.backend(), "epochs_done": state["epoch"],
                   "steps_done": state.get("steps_done", state["epoch"] * config.steps_per_epoch),
                   "patches_seen": state.get("patches_seen",
                                             state["epoch"] * config.steps_per_epoch * config.batch_size),
                   "seconds": state.get("seconds"), "budget_decay_epoch": state.get("budget_decay_epoch"),
                   "weights": state["weights"]}
        atomic.write_text(model_dir / SUMMARY_FILE, json.dumps(summary, indent=1) + "\n")
        return summary
    finally:
        keras.mixed_precision.set_dtype_policy(previous_policy)
