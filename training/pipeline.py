"""The paper's training set as a tf.data pipeline: (bicubic-upsampled LR, HR) pairs.

What one epoch of the paper's set is (Sec. IV-A, as in VDSR's data scripts):
for every HR luminance image and every one of its 24 augmented variants
(downscale by 1, 0.7 or 0.5 x rotation by 0/90/180/270 x no flip / flip), and
for every scale `s` of the list: crop the variant to a multiple of `s`
(modcrop), degrade the *whole* image (`imresize` by 1/s then by s, MATLAB
bicubic, computed in-graph), then cut both images into non-overlapping 41x41
sub-images on the same grid. Degrading the whole image rather than each patch
is what makes the LR patch equal the image's degradation at that place,
border effects included only where the image really has a border.

Values: HR is the luminance in [0, 1] (uint8 Y / 255, protocol.md), LR the
float result of the degradation, no rounding (protocol.md step 4). The
downscaled augmentation variants are rounded back to uint8 levels, since
VDSR's augmentation script writes them as 8-bit images; the resize itself is
done in float and rounded once (MATLAB's uint8 `imresize` rounds after each of
its two 1-D passes, which moves ~18% of the pixels by one level: immaterial
for training, and not expressible with the float-only `imresize_tf`).

Two modes:
- "paper": the fixed set above, shuffled each epoch; an epoch is all of it.
- "random_crop": an endless stream; each draw degrades one random variant of
  one random image at one random scale and cuts `crops_per_image` random
  (possibly overlapping) 41x41 pairs; an epoch is `steps_per_epoch` batches.

Determinism: every random choice is a stateless function of (seed, epoch), so
the batches of epoch `e` are the same whichever epoch training started from;
that is what lets a resumed run continue exactly where it stopped.
"""

import dataclasses
import math

import numpy as np
import tensorflow as tf

from cmsc_tf.numerics import color
from cmsc_tf.numerics.imresize_tf import imresize_tf
from training.augmentation import DOWNSCALES, NUM_VARIANTS, PATCH_SIZE, luminance_images, variant_parts

MODES = ("paper", "random_crop")


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """How training pairs are made and batched (see the module docstring)."""

    scales: tuple = (2, 3, 4)
    patch_size: int = PATCH_SIZE
    augment: bool = True
    mode: str = "paper"
    crops_per_image: int = 16
    batch_size: int = 32
    shuffle_buffer: int = 8192
    seed: int = 0

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"pipeline mode must be one of {MODES}, got {self.mode!r}")
        if not self.scales or any(int(s) != s or s < 2 for s in self.scales):
            raise ValueError(f"scales must be integers >= 2, got {self.scales!r}")
        if self.patch_size < 1 or self.batch_size < 1 or self.crops_per_image < 1:
            raise ValueError("patch_size, batch_size and crops_per_image must be positive")

    @property
    def num_variants(self):
        return NUM_VARIANTS if self.augment else 1


# ----------------------------------------------------------------------------
# Images: protocol.md's luminance, in a packed in-memory table of uint8 luminance images (the cache).


def hr_luminance(image, grayscale):
    """Protocol.md's uint8 luminance [H, W] of a dataset example (see cmsc_tf.io.tfds_sets)."""
    image = np.asarray(image)
    return image[..., 0] if grayscale else color.luminance(image)


class ImageTable:
    """Luminance images of different sizes, packed in one flat uint8 tensor.

    The whole training set is small as uint8 luminance (291 images: ~45 MB), so
    it is kept in memory once and indexed inside the graph; every epoch then
    only pays for augmentation and degradation.
    """

    def __init__(self, images):
        images = luminance_images(images)
        self.shapes = [tuple(y.shape) for y in images]
        sizes = [y.size for y in images]
        self._flat = tf.constant(np.concatenate([y.ravel() for y in images]))
        self._offsets = tf.constant(np.cumsum([0] + sizes[:-1]), tf.int64)
        self._shapes = tf.constant(self.shapes, tf.int64)

    def __len__(self):
        return len(self.shapes)

    def get(self, index):
        """Image `index` (scalar tensor) as [H, W, 1] uint8."""
        shape = self._shapes[index]
        flat = self._flat[self._offsets[index]:self._offsets[index] + shape[0] * shape[1]]
        return tf.reshape(flat, tf.concat([shape, [1]], 0))


# ----------------------------------------------------------------------------
# Augmentation: variant v = (downscale index, rotation k, flip).


def variant_shape(height, width, variant):
    """(H, W) of variant `variant` of an H x W image (MATLAB's ceil(size * f))."""
    downscale, quarter_turns, _ = variant_parts(variant)
    factor = DOWNSCALES[downscale]
    if factor != 1.0:
        height, width = math.ceil(height * factor), math.ceil(width * factor)
    return (width, height) if quarter_turns % 2 else (height, width)


def augment(y, variant):
    """Variant `variant` (int32 scalar tensor) of a [H, W, 1] uint8 image -> float32 0..255."""
    downscale, quarter_turns, flipped = variant_parts(variant)
    y = tf.cast(y, tf.float32)

    def shrink(factor):
        # Back to uint8 levels (rounded, clipped), see the module docstring.
        return lambda: tf.clip_by_value(tf.floor(imresize_tf(y, scale=factor) + 0.5), 0.0, 255.0)

    y = tf.switch_case(downscale, [lambda: y] + [shrink(f) for f in DOWNSCALES[1:]])
    y = tf.image.rot90(y, quarter_turns)
    return tf.cond(flipped > 0, lambda: tf.image.flip_left_right(y), lambda: y)


# ----------------------------------------------------------------------------
# Degradation and patches.


def modcrop(image, scale):
    """Drops the last H mod s rows and W mod s columns of [H, W, C]."""
    shape = tf.shape(image)
    return image[:shape[0] - shape[0] % scale, :shape[1] - shape[1] % scale]


def degrade(hr, scale):
    """Bicubic down by 1/s then up by s (MATLAB imresize) of a modcropped [H, W, C] image."""
    size = tf.shape(hr)[:2]
    low = imresize_tf(hr, output_shape=size // scale)
    return imresize_tf(low, output_shape=size)


def grid_patches(image, size):
    """Non-overlapping size x size patches of [H, W, C], row-major -> [N, size, size, C]."""
    shape = tf.shape(image)
    rows, cols = shape[0] // size, shape[1] // size
    image = image[:rows * size, :cols * size]
    blocks = tf.reshape(image, [rows, size, cols, size, shape[2]])
    return tf.reshape(tf.transpose(blocks, [0, 2, 1, 3, 4]), [rows * cols, size, size, shape[2]])


def paper_pairs(variant_image, scales, size):
    """All (LR-up, HR) grid patches of one augmented image (0..255 float) at every scale."""
    lrs, hrs = [], []
    for scale in scales:
        hr = modcrop(variant_image, scale) / 255.0
        lrs.append(grid_patches(degrade(hr, scale), size))
        hrs.append(grid_patches(hr, size))
    return tf.concat(lrs, 0), tf.concat(hrs, 0)


def random_pairs(variant_image, scale, count, size, seed):
    """`count` random (LR-up, HR) size x size crops of one augmented image at one scale.

    Images smaller than a patch at this scale give no pairs.
    """
    hr = modcrop(variant_image, scale) / 255.0
    shape = tf.shape(hr)
    if_room = tf.logical_and(shape[0] >= size, shape[1] >= size)
    hr = tf.cond(if_room, lambda: hr, lambda: tf.zeros([size, size, 1]))
    lr = tf.cond(if_room, lambda: degrade(hr, scale), lambda: hr)
    shape = tf.shape(hr)
    top = tf.random.stateless_uniform([count], seed, 0, shape[0] - size + 1, tf.int32)
    left = tf.random.stateless_uniform([count], seed + [0, 1], 0, shape[1] - size + 1, tf.int32)
    offsets = tf.stack([top, left], 1)
    take = lambda image: tf.map_fn(  # noqa: E731
        lambda o: tf.slice(image, [o[0], o[1], 0], [size, size, 1]), offsets,
        fn_output_signature=tf.float32)
    keep = tf.cast(if_room, tf.int32) * count
    return take(lr)[:keep], take(hr)[:keep]


# ----------------------------------------------------------------------------
# Counting (no degradation needed: patch counts follow from image sizes).


def count_paper_patches(shapes, scales=(2, 3, 4), size=PATCH_SIZE, augment_images=True):
    """Number of pairs in one epoch of the "paper" mode, from the image sizes alone."""
    total = 0
    for height, width in shapes:
        for variant in range(NUM_VARIANTS if augment_images else 1):
            h, w = variant_shape(height, width, variant)
            total += sum(((h - h % s) // size) * ((w - w % s) // size) for s in scales)
    return total


def steps_per_epoch(num_patches, batch_size):
    """Full batches in an epoch; the remainder of each epoch is dropped."""
    return num_patches // batch_size


# ----------------------------------------------------------------------------
# Datasets.


def _epoch_seed(config, epoch):
    return tf.stack([tf.constant(config.seed, tf.int64), tf.cast(epoch, tf.int64)])


def _paper_epoch(table, config, epoch):
    """Unbatched, shuffled pairs of one "paper" epoch."""
    seed = _epoch_seed(config, epoch)
    work = tf.random.experimental.stateless_shuffle(
        tf.range(len(table) * config.num_variants, dtype=tf.int64), seed)

    def pairs(item):
        image = table.get(item // config.num_variants)
        variant = tf.cast(item % config.num_variants, tf.int32)
        return paper_pairs(augment(image, variant), config.scales, config.patch_size)

    return _shuffled_pairs(tf.data.Dataset.from_tensor_slices(work).map(
        pairs, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True), config, seed)


def _random_crop_epoch(table, config, epoch, num_steps):
    """Unbatched pairs of one "random_crop" epoch: an endless stream of draws.

    Endless, so that draws that yield no pair (a variant smaller than a patch)
    can never make the epoch short; `epoch_batches` takes `num_steps` batches,
    and a short epoch would shift every later epoch and break exact resume.
    """
    del num_steps  # the caller's take() bounds the stream
    seed = _epoch_seed(config, epoch)
    scales = tf.constant(config.scales, tf.int32)

    def pairs(draw):
        draw_seed = tf.random.experimental.stateless_fold_in(seed, draw)
        choice = tf.random.stateless_uniform([3], draw_seed, 0, 2**30, tf.int32)
        image = table.get(tf.cast(choice[0] % len(table), tf.int64))
        variant = choice[1] % config.num_variants
        scale = scales[choice[2] % len(config.scales)]
        return random_pairs(augment(image, variant), scale, config.crops_per_image,
                            config.patch_size, draw_seed)

    return _shuffled_pairs(tf.data.Dataset.range(2**62).map(
        pairs, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True), config, seed)


def _shuffled_pairs(groups, config, seed):
    # The work order already differs per epoch (stateless, from (seed, epoch)); the
    # buffer shuffle takes a fixed Python seed, so it too is a function of (seed, epoch).
    del seed
    return groups.unbatch().shuffle(config.shuffle_buffer, seed=config.seed + 1)


def epoch_batches(table, config, epoch, num_steps):
    """Exactly `num_steps` (lr, hr) batches of epoch `epoch` (int or int64 tensor)."""
    if config.mode == "paper":
        pairs = _paper_epoch(table, config, epoch)
    else:
        pairs = _random_crop_epoch(table, config, epoch, num_steps)
    return pairs.batch(config.batch_size, drop_remainder=True).take(num_steps)


def training_dataset(table, config, num_steps, start_epoch=0, start_step=0, end_epoch=None):
    """The batches of epochs start_epoch.. (endless if end_epoch is None), prefetched.

    The first `start_step` batches of `start_epoch` are skipped, so that a run
    resumed mid-epoch sees exactly the batches it had not trained on yet.
    """
    epochs = tf.data.Dataset.range(start_epoch, end_epoch if end_epoch is not None else 2**62)
    dataset = epochs.flat_map(lambda epoch: epoch_batches(table, config, epoch, num_steps))
    dataset = dataset.skip(start_step)
    options = tf.data.Options()
    options.deterministic = True
    # Pairs are made from in-memory tensors, not files: shard by data across workers.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)
