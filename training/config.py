"""A training run's settings: `TrainConfig`, whose defaults are the paper's recipe (cmsc.flags).

The defaults are defined here once; `training/main.py` declares one flag per
field with the field's default. The resolved settings are written to the
run's config.json, and a resumed run says which of them changed.
"""

import dataclasses
import math

from training import distribution, optimizers
from training.data.source import MODES, PATCH_SIZE

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
LOSS_PIXEL_REDUCTIONS = ("sum", "mean")
LOSS_NORMS = ("l2", "l1")
LR_SCHEDULES = ("step", "cosine")
# What the time budget counts: wall-clock seconds, or the process's CPU seconds
# (all its threads), which arms sharing a busy machine spend equally.
BUDGET_CLOCKS = ("wall", "cpu")


@dataclasses.dataclass
class TrainConfig:
    """Everything a run depends on (each field is the flag of the same name in training.main)."""

    # Model.
    variant: str = "cmsc"
    model_overrides: dict = dataclasses.field(default_factory=dict)
    synchronized_bn: bool = False
    # Data.
    data_dir: str = ""
    train_sets: tuple = ("t91", "bsd200")
    val_set: str = "set5"
    val_scales: tuple = (2, 3, 4)
    val_max_images: int = 0
    val_crop_size: int = 0
    pipeline: str = "paper"
    scales: tuple = (2, 3, 4)
    patch_size: int = PATCH_SIZE
    augment: bool = True
    batch_size: int = 32
    steps_per_epoch: int = 0
    seed: int = 0
    # Optimisation.
    optimizer: str = "sgd"
    learning_rate: float = 0.1
    lr_decay_epochs: tuple = (10, 20, 30, 40)
    lr_decay_factor: float = 0.1
    lr_schedule: str = "step"
    momentum: float = 0.9
    weight_decay: float = 1e-4
    clip: str = "global_norm"  # the reading of Sec. IV-B that trains (docs/training.md)
    clip_threshold: float = 0.4
    # Eq. 8 sums the squared error over a patch's pixels ("sum"); "mean" divides
    # it by the patch area, which shrinks the gradients 1681-fold at 41x41.
    loss_pixel_reduction: str = "sum"
    # Eq. 8's squared error ("l2"), or the absolute error in its place ("l1").
    loss_norm: str = "l2"
    scale_loss_weights: dict = dataclasses.field(default_factory=dict)
    epochs: int = 50
    time_budget_s: float = 0.0
    decay_at_budget_fraction: float = 0.0
    budget_clock: str = "wall"
    # Where and how.
    model_dir: str = "runs/cmsc"
    export_dir: str = "savedmodels/cmsc"
    strategy: str = "default"
    tpu: str = ""
    precision: str = "float32"
    xla: bool = False
    steps_per_execution: int = 1
    checkpoint_every_steps: int = 1000
    eval_every_steps: int = 0
    keep_epoch_checkpoints: bool = True
    bn_recalibration_batches: int = 0
    tensorboard: bool = True
    image_summaries: int = 2
    verbose: int = 1

    def validate(self):
        """Raises ValueError naming the first bad setting (before any work is done)."""
        import cmsc_tf

        positive = ("patch_size", "batch_size", "epochs", "steps_per_execution")
        checks = [
            (self.variant in cmsc_tf.VARIANTS, f"variant must be one of {cmsc_tf.VARIANTS}"),
            (self.strategy in distribution.STRATEGIES, f"strategy must be one of {distribution.STRATEGIES}"),
            (self.optimizer in optimizers.OPTIMIZERS, f"optimizer must be one of {optimizers.OPTIMIZERS}"),
            (self.clip in optimizers.CLIPPING, f"clip must be one of {optimizers.CLIPPING}"),
            (self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}"),
            (self.pipeline in MODES, f"pipeline must be one of {MODES}"),
            (self.loss_pixel_reduction in LOSS_PIXEL_REDUCTIONS,
             f"loss_pixel_reduction must be one of {LOSS_PIXEL_REDUCTIONS}"),
            (self.loss_norm in LOSS_NORMS, f"loss_norm must be one of {LOSS_NORMS}"),
            (self.lr_schedule in LR_SCHEDULES, f"lr_schedule must be one of {LR_SCHEDULES}"),
            (self.budget_clock in BUDGET_CLOCKS, f"budget_clock must be one of {BUDGET_CLOCKS}"),
            (self.lr_schedule != "cosine" or not (self.lr_decay_epochs or self.decay_at_budget_fraction),
             "lr_schedule=cosine decays the rate by itself: leave lr_decay_epochs and "
             "decay_at_budget_fraction empty"),
            (self.val_crop_size == 0 or self.val_crop_size >= 32,
             "val_crop_size must be 0 (whole images) or at least 32"),
            *((getattr(self, name) >= 1, f"{name} must be >= 1") for name in positive),
            (self.steps_per_epoch >= 0, "steps_per_epoch must be >= 0 (0: one pass over the paper pairs)"),
            (self.steps_per_epoch > 0 or self.pipeline == "paper",
             "the random_crop pipeline needs steps_per_epoch > 0"),
            (_finite_positive(self.learning_rate), f"learning_rate must be a finite number > 0, "
                                                   f"got {self.learning_rate}"),
            (_finite_positive(self.lr_decay_factor), "lr_decay_factor must be a finite number > 0"),
            (math.isfinite(self.momentum) and 0 <= self.momentum < 1, "momentum must lie in [0, 1)"),
            (math.isfinite(self.weight_decay) and self.weight_decay >= 0, "weight_decay must be >= 0"),
            (self.clip == "none" or _finite_positive(self.clip_threshold), "clip_threshold must be > 0"),
            (math.isfinite(self.time_budget_s) and self.time_budget_s >= 0,
             "time_budget_s must be >= 0 (0: no limit)"),
            (0.0 <= self.decay_at_budget_fraction < 1.0, "decay_at_budget_fraction must lie in [0, 1)"),
            (not self.decay_at_budget_fraction or self.time_budget_s > 0,
             "decay_at_budget_fraction needs time_budget_s"),
            (self.bn_recalibration_batches >= 0, "bn_recalibration_batches must be >= 0"),
            (self.checkpoint_every_steps >= 0, "checkpoint_every_steps must be >= 0 (0: epoch ends only)"),
            (self.eval_every_steps >= 0, "eval_every_steps must be >= 0 (0: epoch ends only)"),
            (self.eval_every_steps % self.steps_per_execution == 0,
             "eval_every_steps must be a multiple of steps_per_execution"),
            (not self.scale_loss_weights or not set(self.scales) - set(self.scale_loss_weights),
             f"scale_loss_weights has no weight for scale(s) "
             f"{sorted(set(self.scales) - set(self.scale_loss_weights))}"),
            (all(_finite_positive(w) for w in self.scale_loss_weights.values()),
             f"scale_loss_weights must be positive, got {self.scale_loss_weights}"),
            (self.strategy != "multi_worker" or self.steps_per_execution == 1,
             "--strategy=multi_worker needs --steps_per_execution=1"),
            # Each worker keeps its own clock: the workers could stop at different epochs.
            (self.strategy != "multi_worker" or not self.time_budget_s,
             "--time_budget_s is not supported with --strategy=multi_worker"),
            (self.checkpoint_every_steps % self.steps_per_execution == 0,
             "checkpoint_every_steps must be a multiple of steps_per_execution"),
            (bool(self.val_scales) and all(int(s) == s and s >= 2 for s in self.val_scales),
             "val_scales must be integers >= 2"),
            (self.val_max_images >= 0 and self.image_summaries >= 0,
             "val_max_images and image_summaries must be >= 0"),
            (bool(self.train_sets), "train_sets is empty"),
            (bool(self.model_dir), "model_dir is empty"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def learning_rate_at(self, epoch, steps_per_epoch, budget_decay_step=None):
        """The step schedule's rate of epoch `epoch` (0-based): decayed at each of `lr_decay_epochs`
        passed, and once more in the epochs that start at or after `budget_decay_step` (a global
        step, where the time budget decayed it)."""
        decays = sum(1 for boundary in self.lr_decay_epochs if epoch >= boundary)
        decays += int(budget_decay_step is not None and epoch * steps_per_epoch >= budget_decay_step)
        return float(self.learning_rate * self.lr_decay_factor ** decays)

    def cosine_learning_rate(self, fraction_done):
        """The cosine schedule's rate once `fraction_done` of the run (its time budget if it has
        one, else its epochs) is spent: half a cosine from learning_rate down to 0."""
        fraction = min(max(float(fraction_done), 0.0), 1.0)
        return float(self.learning_rate * 0.5 * (1.0 + math.cos(math.pi * fraction)))


def _finite_positive(value):
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0
