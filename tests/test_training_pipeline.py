"""The training-set pipeline (training/pipeline.py) against independent NumPy truth."""

import itertools

import numpy as np
import pytest
import skimage.data
import tensorflow as tf

from cmsc_tf.numerics.imresize_np import imresize_np
from training import pipeline

SIZE = pipeline.PATCH_SIZE


def camera_crop(height, width):
    """A real photograph (not symmetric, fine detail), as uint8 luminance."""
    return np.ascontiguousarray(skimage.data.camera()[100:100 + height, 150:150 + width])


def numpy_variant(y_uint8, variant):
    """The augmentation written independently: float64 bicubic downscale rounded to uint8
    levels once, then counter-clockwise rotation, then left-right mirror."""
    downscale, quarter_turns, flipped = variant // 8, (variant // 2) % 4, variant % 2
    factor = (1.0, 0.7, 0.5)[downscale]
    image = y_uint8.astype(np.float64)
    if factor != 1.0:
        image = np.clip(np.floor(imresize_np(image, factor) + 0.5), 0, 255)
    image = np.rot90(image, quarter_turns)
    return (np.fliplr(image) if flipped else image).astype(np.float64)


def tf_variant(y_uint8, variant):
    return pipeline.augment(tf.constant(y_uint8[..., None]), tf.constant(variant))[..., 0].numpy()


def test_24_variants_are_the_papers_and_distinct():
    y = camera_crop(50, 70)
    variants = [tf_variant(y, v) for v in range(pipeline.NUM_VARIANTS)]
    assert len(variants) == 24
    for v, image in enumerate(variants):
        expected = numpy_variant(y, v)
        assert image.shape == expected.shape == pipeline.variant_shape(50, 70, v)
        # float32 vs float64 bicubic may round a rare .5 boundary differently.
        assert np.abs(image - expected).max() <= 1.0
        assert np.mean(image != expected) < 1e-3
    for a, b in itertools.combinations(range(24), 2):
        same_shape = variants[a].shape == variants[b].shape
        assert not (same_shape and np.array_equal(variants[a], variants[b])), (a, b)


def halo_region(start, length, scale, limit, halo):
    """[lo, hi) around [start, start + length) widened by `halo`, on the scale grid, clipped."""
    lo = max(0, (start - halo) // scale * scale)
    hi = min(limit, -(-(start + length + halo) // scale) * scale)
    return lo, hi


@pytest.mark.parametrize("variant", [0, 7, 9, 20])  # identity, rot270+flip, 0.7 + flip, 0.5 + rot180
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_lr_patch_is_the_bicubic_degradation_of_its_hr_region(variant, scale):
    """Each LR patch equals imresize(imresize(HR, 1/s), s) computed by NumPy around its region.

    The pipeline degrades the whole (modcropped) augmented image and then cuts
    patches. The reference here degrades only a window around each patch:
    the patch plus a halo of 6s HR pixels, aligned to the scale grid and
    clipped to the image. The shrink kernel reaches 2s HR pixels, the enlarge
    kernel 2 LR = 2s HR pixels, plus rounding of tap positions: under 6s in
    all. So inside the window every patch pixel sees the same input as in the
    whole image; where the window is clipped it is clipped by the image's own
    border, whose mirror padding is then the same in both. The whole patch,
    border rows included, must therefore agree (to float32 precision).
    """
    y = camera_crop(100, 130)
    image = tf_variant(y, variant)
    lr, hr = (t.numpy()[..., 0] for t in pipeline.paper_pairs(
        tf.constant(image[..., None], tf.float32), [scale], SIZE))

    reference = numpy_variant(y, variant)
    height, width = (n - n % scale for n in reference.shape)
    reference = reference[:height, :width] / 255.0
    rows, cols = height // SIZE, width // SIZE
    assert lr.shape == hr.shape == (rows * cols, SIZE, SIZE)
    assert rows * cols > 0

    for index, (r, c) in enumerate(itertools.product(range(rows), range(cols))):
        top, left = r * SIZE, c * SIZE
        np.testing.assert_allclose(hr[index], reference[top:top + SIZE, left:left + SIZE],
                                   atol=1.0 / 255 + 1e-6)
        y0, y1 = halo_region(top, SIZE, scale, height, 6 * scale)
        x0, x1 = halo_region(left, SIZE, scale, width, 6 * scale)
        window = reference[y0:y1, x0:x1]
        degraded = imresize_np(imresize_np(window, 1 / scale), scale)
        expected = degraded[top - y0:top - y0 + SIZE, left - x0:left - x0 + SIZE]
        if variant < 8:  # exact HR: the degradation must agree to float32 precision
            np.testing.assert_allclose(lr[index], expected, atol=2e-5)
        else:  # a rare +-1 level in the rounded downscaled HR moves LR by at most ~1/255
            assert np.abs(lr[index] - expected).max() < 1.5 / 255
            assert np.mean(np.abs(lr[index] - expected) > 2e-5) < 0.05


def test_epoch_patch_count_matches_hand_computation():
    """One 83x100 image, scales 2, 3, 4, 41x41 patches, 24 variants.

    floor(n / 41) patches per side after modcrop (n - n mod s):
    - factor 1, 83x100 (and 100x83 when rotated by 90/270, same counts):
      s=2 82x100 -> 2*2=4, s=3 81x99 -> 1*2=2, s=4 80x100 -> 1*2=2: 8
    - factor 0.7, ceil(58.1) x ceil(70.0) = 59x70: s=2 58x70, s=3 57x69,
      s=4 56x68 -> 1 each: 3
    - factor 0.5, 42x50: s=2 42x50 -> 1, s=3 42x48 -> 1, s=4 40x48 -> 0: 2
    Each factor has 8 rotation/flip variants: 8 * (8 + 3 + 2) = 104.
    """
    shapes = [(83, 100)]
    assert pipeline.count_paper_patches(shapes) == 104
    assert pipeline.count_paper_patches(shapes, augment_images=False) == 8

    table = pipeline.ImageTable([camera_crop(83, 100)])
    config = pipeline.PipelineConfig(batch_size=1, shuffle_buffer=16)
    produced = pipeline.epoch_batches(table, config, 0, num_steps=10**6)
    assert sum(1 for _ in produced) == 104


def small_table():
    return pipeline.ImageTable([camera_crop(90, 120), camera_crop(60, 70)])


@pytest.mark.parametrize("mode", ["paper", "random_crop"])
def test_stream_is_deterministic_and_resumes_at_any_batch(mode):
    table = small_table()
    config = pipeline.PipelineConfig(batch_size=4, mode=mode, crops_per_image=4,
                                     shuffle_buffer=64, seed=3)
    steps = 5
    full = [b[1].numpy() for b in pipeline.training_dataset(table, config, steps, end_epoch=2)]
    again = [b[1].numpy() for b in pipeline.training_dataset(table, config, steps, end_epoch=2)]
    assert len(full) == 2 * steps
    assert all(np.array_equal(a, b) for a, b in zip(full, again))
    # A run resumed at epoch 1, batch 2 sees exactly the batches it had not seen.
    resumed = [b[1].numpy() for b in pipeline.training_dataset(
        table, config, steps, start_epoch=1, start_step=2, end_epoch=2)]
    assert len(resumed) == steps - 2
    assert all(np.array_equal(a, b) for a, b in zip(full[steps + 2:], resumed))
    # Epochs differ from each other, and another seed gives another stream.
    assert not np.array_equal(full[0], full[steps])
    other = pipeline.PipelineConfig(**{**config.__dict__, "seed": 4})
    first_other = next(iter(pipeline.training_dataset(table, other, steps)))[1].numpy()
    assert not np.array_equal(full[0], first_other)


def test_random_crops_are_aligned_pairs():
    """random_crop mode: HR crops are pixels of an augmented image; LR has the same geometry."""
    table = small_table()
    config = pipeline.PipelineConfig(batch_size=8, mode="random_crop", crops_per_image=8,
                                     shuffle_buffer=1, scales=(2,))
    lr, hr = next(iter(pipeline.training_dataset(table, config, 1)))
    lr, hr = lr.numpy()[..., 0], hr.numpy()[..., 0]
    # Bicubic down-up is a low-pass of the same image: close to HR, never identical.
    for a, b in zip(lr, hr):
        assert 0 < np.abs(a - b).mean() < 0.1
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.8
    # Every HR crop occurs in one of the 24 variants of one of the images.
    variants = [numpy_variant(y, v) / 255.0 for y in (camera_crop(90, 120), camera_crop(60, 70))
                for v in range(24)]
    for crop in hr:
        assert any(_contains(image, crop) for image in variants)


def _contains(image, crop):
    size = crop.shape[0]
    if image.shape[0] < size or image.shape[1] < size:
        return False
    windows = np.lib.stride_tricks.sliding_window_view(image, crop.shape)
    return bool(np.any(np.all(np.abs(windows - crop) <= 1.0 / 255 + 1e-6, axis=(2, 3))))


def test_random_crop_epoch_is_never_short_when_draws_yield_nothing():
    """A 30x30 image: its 0.5 and 0.7 variants (15, 21 pixels) are smaller than
    or barely hold a 25-pixel patch, so two thirds of the draws give no pair.
    The epoch must still hold exactly `num_steps` batches (a short one would
    shift every later epoch and break exact resume)."""
    rng = np.random.default_rng(0)
    table = pipeline.ImageTable([rng.integers(0, 256, (30, 30), dtype=np.uint8)])
    config = pipeline.PipelineConfig(mode="random_crop", patch_size=25, batch_size=4,
                                     crops_per_image=2, shuffle_buffer=8, scales=(2,))
    batches = list(pipeline.epoch_batches(table, config, 0, num_steps=12))
    assert len(batches) == 12
    assert all(x.shape == (4, 25, 25, 1) for x, _ in batches)
