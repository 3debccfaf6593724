"""The training pairs of the paper (Sec. IV-A) as batches addressed by (seed, global step).

Preparation, once per run (7.5 s and 1.8 GB for the 291 images on an idle 2-core CPU;
`benchmarks/training_pipeline.py` times it):
every HR luminance image, in its size variants (factor 1, 0.7, 0.5, rounded
back to uint8 levels as VDSR's augmentation script writes them), is degraded
at every training scale by `cmsc_tf.numerics.degradation` (modcrop, MATLAB
bicubic by 1/s then s, float64, unrounded). Degrading whole images rather than
patches makes every LR patch equal the image's degradation at that place.

A pair is a 41x41 window of one (size variant, scale) image, at the same place
in LR and HR, then turned by k quarter turns (counter-clockwise, as
`np.rot90`) and flipped left-right: 3 sizes x 4 turns x 2 flips are the
paper's 24 variants. (The paper turns the image before it modcrops and
degrades; bicubic resizing commutes with quarter turns and flips, so the two
orders give the same pairs wherever modcrop drops nothing.)

Two modes choose the windows:
- "paper": every non-overlapping grid window of every (size, scale) image in
  all 8 orientations, once per pass, in the order of one permutation per pass
  drawn from (seed, pass): a global shuffle. A pass is `steps_per_pass`
  batches (the remainder is dropped).
- "random_crop": each pair of batch `step` drawn from (seed, step): a scale
  (uniform over the listed scales, so a scale listed twice is drawn twice as
  often), an image of that scale, a position and an orientation.

Every batch is a function of (seed, global step) alone, whatever step a run
starts from: a resumed run, a run on another backend, and the tf.data feed
all see the same batches.
"""

import queue
import threading

import numpy as np

from cmsc_tf.numerics.degradation import degrade, modcrop
from cmsc_tf.numerics.imresize_np import imresize_np

PATCH_SIZE = 41
SIZE_FACTORS = (1.0, 0.7, 0.5)
ORIENTATIONS = 8  # 4 quarter turns x 2 (flipped or not)
MODES = ("paper", "random_crop")
# Batches for BN recalibration come from steps no training run reaches.
CALIBRATION_STEP = 2**40


def size_variant(y, factor):
    """uint8 image `y` shrunk by `factor` in float and rounded back to uint8 levels."""
    if factor == 1.0:
        return y
    shrunk = imresize_np(y.astype(np.float64), scale=factor)
    return np.clip(np.floor(shrunk + 0.5), 0, 255).astype(np.uint8)


def orient(patch, orientation):
    """`patch` turned by orientation // 2 quarter turns, then flipped left-right if it is odd."""
    patch = np.rot90(patch, orientation // 2)
    return patch[:, ::-1] if orientation % 2 else patch


def check_luminance_images(images):
    """`images` as a list of 2-D uint8 arrays; at least one."""
    images = [np.asarray(y) for y in images]
    if not images:
        raise ValueError("no training images")
    for y in images:
        if y.ndim != 2 or y.dtype != np.uint8:
            raise ValueError(f"expected 2-D uint8 luminance images, got {y.dtype} {y.shape}")
    return images


class TrainingSource:
    """(LR-up, HR) training batches of uint8 luminance images; see the module docstring.

    Args:
      images: uint8 [H, W] luminance images.
      scales: training scales (integers >= 2; repeat one to draw it more often
        in "random_crop" mode; "paper" mode uses each listed scale once).
      patch_size: side of the square pairs.
      augment: the 24 variants (3 sizes x 8 orientations), else the images as they are.
      mode: "paper" or "random_crop".
      batch_size: pairs per batch.
      seed: the seed every choice derives from.
      scale_weights: optional {scale: weight}: batches then carry each pair's
        weight as a third array (Keras sample weights).
    """

    def __init__(self, images, scales=(2, 3, 4), patch_size=PATCH_SIZE, augment=True, mode="paper",
                 batch_size=32, seed=0, scale_weights=None):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if not scales or any(isinstance(s, bool) or int(s) != s or s < 2 for s in scales):
            raise ValueError(f"scales must be integers >= 2, got {scales!r}")
        if patch_size < 1 or batch_size < 1:
            raise ValueError("patch_size and batch_size must be positive")
        self.scales = tuple(int(s) for s in scales)
        self.patch_size, self.augment, self.mode = int(patch_size), bool(augment), mode
        self.batch_size, self.seed = int(batch_size), int(seed)
        self.scale_weights = dict(scale_weights or {})
        missing = sorted(set(self.scales) - set(self.scale_weights)) if self.scale_weights else []
        if missing:
            raise ValueError(f"scale_weights has no weight for scale(s) {missing}")
        self._prepare(check_luminance_images(images))
        self._pass_order = (None, None)  # (pass, permutation) of the paper mode
        self._lock = threading.Lock()  # the tf.data feed calls batch() from several threads

    # --- preparation -------------------------------------------------------

    def _prepare(self, images):
        size = self.patch_size
        self.hr = []     # uint8 size variants
        self.lr = []     # float32 degradations: (hr index, scale, lr)
        for y in images:
            for factor in (SIZE_FACTORS if self.augment else (1.0,)):
                variant = size_variant(y, factor)
                if min(variant.shape) < size:
                    continue
                self.hr.append(variant)
                for scale in dict.fromkeys(self.scales):  # each distinct scale once
                    hr = modcrop(variant, scale)
                    if min(hr.shape) >= size:
                        lr = degrade(hr.astype(np.float64) / 255.0, scale).astype(np.float32)
                        self.lr.append((len(self.hr) - 1, scale, lr))
        present = {scale for _, scale, _ in self.lr}
        absent = [s for s in dict.fromkeys(self.scales) if s not in present]
        if absent:
            raise ValueError(f"no training image is at least {size}x{size} pixels at scale(s) "
                             f"{absent} (after modcrop); use larger images or a smaller --patch_size")
        self._by_scale = {s: np.asarray([i for i, (_, t, _) in enumerate(self.lr) if t == s])
                          for s in present}
        # Paper mode: grid windows per degraded image, and where each image's items start.
        self._grid = [(lr.shape[0] // size, lr.shape[1] // size) for _, _, lr in self.lr]
        orientations = ORIENTATIONS if self.augment else 1
        counts = np.asarray([rows * cols * orientations for rows, cols in self._grid], np.int64)
        self._item_starts = np.concatenate([[0], np.cumsum(counts)])
        self.num_paper_pairs = int(self._item_starts[-1])

    @property
    def steps_per_pass(self):
        """Batches in one pass over the paper-mode pairs (the remainder is dropped)."""
        return self.num_paper_pairs // self.batch_size

    # --- choosing the pairs of a batch ----------------------------------------

    def _paper_plan(self, step):
        if self.steps_per_pass < 1:
            raise ValueError(f"the training set has {self.num_paper_pairs} grid pairs, "
                             f"fewer than one batch of {self.batch_size}")
        epoch, index = divmod(int(step), self.steps_per_pass)
        with self._lock:
            if self._pass_order[0] != epoch:
                rng = np.random.default_rng([self.seed, epoch])
                self._pass_order = (epoch, rng.permutation(self.num_paper_pairs))
            items = self._pass_order[1][index * self.batch_size:(index + 1) * self.batch_size]
        images = np.searchsorted(self._item_starts, items, side="right") - 1
        within = items - self._item_starts[images]
        orientations = ORIENTATIONS if self.augment else 1
        cells, orientation = np.divmod(within, orientations)
        cols = np.asarray([self._grid[i][1] for i in images])
        rows, columns = np.divmod(cells, cols)
        return images, rows * self.patch_size, columns * self.patch_size, orientation

    def _random_plan(self, step):
        rng = np.random.default_rng([self.seed, int(step)])
        images, tops, lefts, orientations = [], [], [], []
        for _ in range(self.batch_size):
            candidates = self._by_scale[self.scales[rng.integers(len(self.scales))]]
            image = candidates[rng.integers(len(candidates))]
            height, width = self.lr[image][2].shape
            images.append(image)
            tops.append(rng.integers(height - self.patch_size + 1))
            lefts.append(rng.integers(width - self.patch_size + 1))
            orientations.append(rng.integers(ORIENTATIONS) if self.augment else 0)
        return images, tops, lefts, orientations

    # --- the batches -----------------------------------------------------------

    def batch(self, step):
        """Batch `step`: (lr, hr) float32 [batch, size, size, 1], plus weights [batch] with scale_weights."""
        plan = self._paper_plan(step) if self.mode == "paper" else self._random_plan(step)
        size = self.patch_size
        lrs, hrs, scales = [], [], []
        for image, top, left, orientation in zip(*plan):
            hr_index, scale, lr = self.lr[image]
            window = (slice(top, top + size), slice(left, left + size))
            lrs.append(orient(lr[window], orientation))
            hrs.append(orient(self.hr[hr_index][window], orientation))
            scales.append(scale)
        lr = np.stack(lrs)[..., None]
        hr = (np.stack(hrs).astype(np.float32) / np.float32(255))[..., None]
        if not self.scale_weights:
            return lr, hr
        return lr, hr, np.asarray([self.scale_weights[s] for s in scales], np.float32)

    def batch_scales(self, step):
        """The scale of each pair of batch `step` (for tests and diagnostics)."""
        plan = self._paper_plan(step) if self.mode == "paper" else self._random_plan(step)
        return np.asarray([self.lr[image][1] for image in plan[0]])


def batches(source, first_step, last_step=None):
    """Batches first_step, first_step + 1, ... (up to last_step, excluded) as a generator."""
    step = first_step
    while last_step is None or step < last_step:
        yield source.batch(step)
        step += 1


def prefetched(items, depth=2):
    """The items of iterator `items`, made up to `depth` ahead by a thread of their own.

    Keras's JAX trainer reads each step's loss (the NaN guard) before it asks
    for the next batch, so a batch made on demand waits for the step and the
    accelerator waits for the batch (25 ms for 512 pairs on the 2-core CPU);
    made ahead, NumPy's work overlaps the step. The order stays the iterator's.
    """
    made = queue.Queue(maxsize=depth)
    closed = threading.Event()
    end = object()

    def produce():
        try:
            for item in items:
                made.put((item, None))
                if closed.is_set():
                    return
        except Exception as error:  # raised to the consumer, at the item where it happened
            made.put((end, error))
            return
        made.put((end, None))

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while True:
            item, error = made.get()
            if error is not None:
                raise error
            if item is end:
                return
            yield item
    finally:
        # A consumer that stops early: empty the queue, so that a producer
        # blocked on it puts its item, sees `closed` and ends.
        closed.set()
        while True:
            try:
                made.get_nowait()
            except queue.Empty:
                break
        thread.join()
