"""A training run's settings: `TrainConfig`, whose defaults are the paper's recipe (cmsc.flags).

Each setting is declared here once (`training.lib.settings.setting`: default,
help, choices); training.main's flags, their parsing and the choice checks
are derived from it. The resolved settings are written to the run's
config.json, and a resumed run says which of them changed.
"""

import dataclasses
import math

from cmsc_tf.models import loss_choices
from training.lib import distribution, optimizers
from training.lib.data.source import MODES, PATCH_SIZE
from training.lib.flag_values import parse_overrides, scale_weights
from training.lib.settings import choice_errors, setting

DTYPE_POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
LR_SCHEDULES = ("step", "cosine")
# What the time budget counts: wall-clock seconds, or the process's CPU seconds
# (all its threads), which arms sharing a busy machine spend equally.
BUDGET_CLOCKS = ("wall", "cpu")


@dataclasses.dataclass
class TrainConfig:
    """Everything a run depends on; each field is the flag of the same name in training.main."""

    # Model.
    variant: str = setting("cmsc", "Model variant (cmsc_tf.VARIANTS).")
    model_overrides: dict = setting(
        {}, "Constructor overrides of the variant as key=value, e.g. "
        "num_features=32,num_stages=2,reconstruction_initializer=zeros.",
        parse=lambda name, items: parse_overrides(items))
    sync_batch_norm: bool = setting(False, "Batch-norm statistics over the global batch of all replicas "
                                           "(tf.distribute; keras.distribution on JAX always does this).")
    # Data.
    data_dir: str = setting("", "Datasets folder (layout of shared/datasets); default: $CMSC_DATA_DIR. "
                                "Not needed for the skimage sets.")
    train_sets: tuple = setting(("t91", "bsd200"), "Training image sets, concatenated.")
    val_set: str = setting("set5", "Validation set of the PSNR at every report point ('' for none); "
                                   "choose settings and checkpoints on sunhays80, not a benchmark set.")
    val_scales: tuple = setting((2, 3, 4), "Scales of the validation PSNR.")
    val_max_images: int = setting(0, "Validate on the first N images only (0: all).")
    val_crop_size: int = setting(0, "Validate on the centre crop of at most NxN pixels of each HR image "
                                    "(0: whole images), to size validation to the budget.")
    pipeline: str = setting("paper", "paper: every 41x41 grid pair of the 24 variants per pass, globally "
                                     "shuffled; random_crop: pairs drawn at random positions.", choices=MODES)
    scales: tuple = setting((2, 3, 4), "Training scales, mixed (random_crop: a scale listed twice is drawn "
                                       "twice as often).")
    patch_size: int = setting(PATCH_SIZE, "HR/LR pair size.")
    augment: bool = setting(True, "The paper's 24 variants (0.7/0.5 sizes, turns, flips).")
    batch_size: int = setting(32, "Global batch size (split over replicas).")
    steps_per_epoch: int = setting(0, "Steps per epoch (0: one pass over the paper pairs).")
    seed: int = setting(0, "Seed of initialisation and of every data choice.")
    # Optimisation.
    optimizer: str = setting("sgd", "Optimizer.", choices=optimizers.OPTIMIZERS)
    learning_rate: float = setting(0.1, "Initial learning rate.")
    lr_decay_epochs: tuple = setting((10, 20, 30, 40), "Epochs (0-based) from which the rate is multiplied "
                                                       "by lr_decay_factor once more.")
    lr_decay_factor: float = setting(0.1, "See lr_decay_epochs and decay_at_budget_fraction.")
    lr_schedule: str = setting("step", "step: lr_decay_epochs and decay_at_budget_fraction; cosine: half a "
                                       "cosine from learning_rate to 0 over the time budget (else over the "
                                       "epochs), set every step.", choices=LR_SCHEDULES)
    momentum: float = setting(0.9, "SGD momentum.")
    weight_decay: float = setting(1e-4, "Decoupled weight decay (0: none).")
    ema_momentum: float = setting(0.0, "Keep an exponential moving average of the weights with this momentum "
                                       "(e.g. 0.999; 0: none): validation, checkpoints and the export hold the "
                                       "average (TensorFlow backend).")
    clip: str = setting("global_norm", "Gradient clipping: each element to [-t, t] (value), the global L2 "
                                       "norm to t (global_norm, the reading of Sec. IV-B that trains: "
                                       "docs/training.md), each element to [-t/lr, t/lr] (adjustable, "
                                       "VDSR's), or none.", choices=optimizers.CLIPPING)
    clip_threshold: float = setting(0.4, "t of --clip.")
    # Eq. 8 sums the squared error over a patch's pixels ("sum"); "mean" divides
    # it by the patch area, which shrinks the gradients 1681-fold at 41x41.
    loss_pixel_reduction: str = setting("sum", "Eq. 8's squared error summed over a pair's pixels, or "
                                               "averaged.", choices=loss_choices.PIXEL_REDUCTIONS)
    loss_norm: str = setting("l2", "Eq. 8's (half) squared error, or the absolute error in its place.",
                             choices=loss_choices.NORMS)
    scale_loss_weights: dict = setting(
        {}, "scale=weight for every training scale: each pair's term of Eq. 8 is multiplied by its "
        "scale's weight (empty: the paper's loss).", parse=scale_weights)
    epochs: int = setting(50, "Epochs.")
    time_budget_s: float = setting(0.0, "Stop at the epoch end after which the next epoch would pass this "
                                        "many seconds (epochs with their validation; 0: no limit); a rerun "
                                        "resumes.")
    decay_at_budget_fraction: float = setting(0.0, "Also decay the rate from the epoch after this fraction "
                                                   "of the time budget is spent (0: never).")
    budget_clock: str = setting("wall", "What time_budget_s and the logs' seconds count: wall-clock seconds, "
                                        "or the process's CPU seconds (all threads; fair between runs "
                                        "sharing a busy machine).", choices=BUDGET_CLOCKS)
    # Where and how.
    model_dir: str = setting("runs/cmsc", "Checkpoints, logs, TensorBoard, resolved flags.")
    init_from: str = setting("", "Start an empty --model_dir from this run folder's latest checkpoint (weights, "
                                 "optimizer state, step and logs; the time budget counts the new phase only: a "
                                 "new phase that leaves the source untouched), or the model weights of a .keras "
                                 "file or of one checkpoint (.weights.h5) at step 0 with a fresh optimizer; a "
                                 "--model_dir that holds a run resumes it instead.")
    export_prefix: str = setting("savedmodels/cmsc", "Path prefix of the final model: <export_prefix>.keras, and "
                                                     "with TensorFlow the SavedModel <export_prefix>/<version>/ and "
                                                     "<export_prefix>_<variant>.tflite ('' for none).")
    strategy: str = setting("default", "Data parallelism (training/lib/distribution.py); multi_worker reads "
                                       "TF_CONFIG.", choices=distribution.STRATEGIES)
    tpu: str = setting("", "TPU name or address for --strategy=tpu.")
    dtype_policy: str = setting("float32", "Keras dtype policy of the model while training (mixed "
                                           "precision).", choices=DTYPE_POLICIES)
    xla: bool = setting(False, "TensorFlow: compile the train step with XLA (JAX always does).")
    steps_per_execution: int = setting(1, "Batches per compiled call.")
    checkpoint_every_steps: int = setting(1000, "Checkpoint every N steps (and at every epoch end; 0: epoch "
                                                "ends only).")
    eval_every_steps: int = setting(0, "Also validate and write the logs (CSV, TensorBoard) every N global "
                                       "steps within an epoch (0: at epoch ends only); a paper epoch is "
                                       "23,159 steps.")
    keep_epoch_checkpoints: bool = setting(True, "Keep the checkpoint of every epoch end (else only the "
                                                 "latest).")
    bn_recalibration_batches: int = setting(0, "At each epoch end and report point, set BN moving statistics "
                                               "to the average over this many fixed training batches (0: keep "
                                               "Keras's moving averages).")
    tensorboard: bool = setting(True, "TensorBoard scalars and image summaries.")
    image_summaries: int = setting(2, "Validation images shown as LR|SR|HR crops.")
    verbose: int = setting(1, "Keras verbosity: 0 silent, 1 progress bar, 2 a line per epoch.")

    def validate(self):
        """Raises ValueError naming the first bad setting (before any work is done)."""
        import cmsc_tf

        positive = ("patch_size", "batch_size", "epochs", "steps_per_execution")
        checks = [
            (self.variant in cmsc_tf.VARIANTS, f"variant must be one of {cmsc_tf.VARIANTS}"),
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
            (math.isfinite(self.ema_momentum) and 0 <= self.ema_momentum < 1, "ema_momentum must lie in [0, 1)"),
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
            (self.strategy != "multi_worker" or not self.init_from,
             "--init_from is not supported with --strategy=multi_worker (the chief would seed the folder "
             "the workers read)"),
            (self.checkpoint_every_steps % self.steps_per_execution == 0,
             "checkpoint_every_steps must be a multiple of steps_per_execution"),
            (bool(self.val_scales) and all(int(s) == s and s >= 2 for s in self.val_scales),
             "val_scales must be integers >= 2"),
            (self.val_max_images >= 0 and self.image_summaries >= 0,
             "val_max_images and image_summaries must be >= 0"),
            (bool(self.train_sets), "train_sets is empty"),
            (bool(self.model_dir), "model_dir is empty"),
        ]
        messages = choice_errors(self) + [message for ok, message in checks if not ok]
        if messages:
            raise ValueError(messages[0])

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
