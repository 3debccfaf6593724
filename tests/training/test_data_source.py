"""The training pairs (training/lib/data/source.py) against independent NumPy truth, and its two feeds."""

import itertools

import numpy as np
import pytest
import skimage.data

from cmsc_tf.numerics.imresize_np import imresize_np
from training.lib.data import source as data_source
from training.lib.data.source import TrainingSource, batches

SIZE = data_source.PATCH_SIZE


def camera_crop(height, width):
    """A real photograph (not symmetric, fine detail), as uint8 luminance."""
    return np.ascontiguousarray(skimage.data.camera()[100:100 + height, 150:150 + width])


def numpy_variant(y_uint8, factor_index, orientation):
    """The paper's augmentation written independently, in the paper's order: float64 bicubic
    downscale rounded to uint8 levels once, counter-clockwise quarter turns, left-right mirror."""
    factor = (1.0, 0.7, 0.5)[factor_index]
    image = y_uint8.astype(np.float64)
    if factor != 1.0:
        image = np.clip(np.floor(imresize_np(image, factor) + 0.5), 0, 255)
    image = np.rot90(image, orientation // 2)
    return np.fliplr(image) if orientation % 2 else image


def halo_region(start, length, scale, limit, halo):
    """[lo, hi) around [start, start + length) widened by `halo`, on the scale grid, clipped."""
    lo = max(0, (start - halo) // scale * scale)
    hi = min(limit, -(-(start + length + halo) // scale) * scale)
    return lo, hi


class WindowIndex:
    """Finds where a square window occurs in a set of images (by its first row, then in full)."""

    def __init__(self, images, size):
        self.images, self.size, self.rows = images, size, {}
        for key, image in images.items():
            for top in range(image.shape[0] - size + 1):
                for left in range(image.shape[1] - size + 1):
                    row = image[top, left:left + size].tobytes()
                    self.rows.setdefault(row, []).append((key, top, left))

    def find(self, window):
        return [(key, top, left) for key, top, left in self.rows.get(window[0].tobytes(), [])
                if np.array_equal(self.images[key][top:top + self.size, left:left + self.size], window)]


def unorient(patch, orientation):
    """The inverse of the paper's orientation `orientation` (k quarter turns, then a mirror)."""
    patch = np.fliplr(patch) if orientation % 2 else patch
    return np.rot90(patch, -(orientation // 2))


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("mode", ["paper", "random_crop"])
def test_every_pair_is_an_oriented_window_and_its_bicubic_degradation(scale, mode):
    """Each pair, turned back by one of the 8 orientations, is a window of one of the 3 size
    variants of the image (computed here independently: float64 bicubic shrink rounded to
    uint8 levels), and its LR patch equals imresize(imresize(., 1/s), s) of that variant
    (modcropped) around the window, computed by NumPy on a window with a halo.

    The halo: the shrink kernel reaches 2s HR pixels, the enlarge kernel 2 LR =
    2s HR pixels, plus rounding of tap positions: under 6s in all. Where the
    window is clipped it is clipped by the image's own border, whose mirror
    padding is then the same as the whole image's.
    """
    y = camera_crop(97, 120)
    source = TrainingSource([y], scales=[scale], mode=mode, batch_size=16, seed=3)
    variants = {f: numpy_variant(y, f, 0) for f in range(3)}
    index = WindowIndex(variants, SIZE)
    orientations = set()
    for step in range(3):
        lr, hr = source.batch(step)
        assert lr.shape == hr.shape == (16, SIZE, SIZE, 1) and lr.dtype == hr.dtype == np.float32
        for lr_patch, hr_patch in zip(lr[..., 0], hr[..., 0]):
            hr_levels = np.round(hr_patch.astype(np.float64) * 255)
            places = [(o, place) for o in range(8) for place in index.find(unorient(hr_levels, o))]
            assert places, "the HR patch is no oriented window of any size variant"
            orientation, (factor, top, left) = places[0]
            orientations.add(orientation)
            height, width = (n - n % scale for n in variants[factor].shape)
            reference = variants[factor][:height, :width] / 255.0
            y0, y1 = halo_region(top, SIZE, scale, height, 6 * scale)
            x0, x1 = halo_region(left, SIZE, scale, width, 6 * scale)
            degraded = imresize_np(imresize_np(reference[y0:y1, x0:x1], 1 / scale), scale)
            expected = degraded[top - y0:top - y0 + SIZE, left - x0:left - x0 + SIZE]
            np.testing.assert_allclose(unorient(lr_patch, orientation), expected, atol=2e-6)
    assert len(orientations) >= 6  # the turns and mirrors are all in use


def test_the_8_orientations_are_distinct_and_turn_counter_clockwise():
    patch = camera_crop(41, 41)
    oriented = [data_source.orient(patch, o) for o in range(data_source.ORIENTATIONS)]
    assert all(not np.array_equal(a, b) for a, b in itertools.combinations(oriented, 2))
    np.testing.assert_array_equal(oriented[2], patch.T[::-1])  # a quarter turn counter-clockwise
    np.testing.assert_array_equal(oriented[1], patch[:, ::-1])
    for o in range(8):
        np.testing.assert_array_equal(unorient(oriented[o], o), patch)


def test_paper_pair_count_matches_hand_computation_and_a_pass_has_each_pair_once():
    """One 83x100 image, scales 2, 3, 4, 41x41 patches, 24 variants.

    floor(n / 41) patches per side after modcrop (n - n mod s), the same for a
    turned image:
    - factor 1, 83x100: s=2 82x100 -> 2*2=4, s=3 81x99 -> 1*2=2, s=4 80x100 -> 1*2=2: 8
    - factor 0.7, ceil(58.1) x 70 = 59x70: s=2 58x70, s=3 57x69, s=4 56x68 -> 1 each: 3
    - factor 0.5, 42x50: s=2 42x50 -> 1, s=3 42x48 -> 1, s=4 40x48 -> 0: 2
    Each factor has 8 orientations: 8 * (8 + 3 + 2) = 104.
    """
    y = camera_crop(83, 100)
    assert TrainingSource([y], batch_size=1).num_paper_pairs == 104
    assert TrainingSource([y], batch_size=1, augment=False).num_paper_pairs == 8
    source = TrainingSource([y], batch_size=8)
    assert source.steps_per_pass == 13
    one_pass = [source.batch(step) for step in range(13)]
    pairs = {(lr.tobytes(), hr.tobytes()) for batch in one_pass for lr, hr in zip(*batch)}
    assert len(pairs) == 104  # every pair once: a permutation, not draws with replacement
    second = [source.batch(step) for step in range(13, 26)]
    assert {(lr.tobytes(), hr.tobytes()) for batch in second for lr, hr in zip(*batch)} == pairs
    assert not np.array_equal(one_pass[0][1], second[0][1])  # another order in the next pass


@pytest.mark.parametrize("mode", ["paper", "random_crop"])
def test_batches_are_a_function_of_seed_and_step_and_resume_at_any_step(mode):
    images = [camera_crop(90, 120), camera_crop(60, 70)]
    source = TrainingSource(images, mode=mode, batch_size=4, seed=5)
    stream = list(itertools.islice(batches(source, 0), 12))
    again = TrainingSource(images, mode=mode, batch_size=4, seed=5)
    for step in (0, 5, 11, 7):  # in any order, in a new source
        for a, b in zip(again.batch(step), stream[step]):
            np.testing.assert_array_equal(a, b)
    resumed = list(batches(again, 5, 12))
    assert len(resumed) == 7
    for a, b in zip(resumed, stream[5:]):
        np.testing.assert_array_equal(a[1], b[1])
    other_seed = TrainingSource(images, mode=mode, batch_size=4, seed=6)
    assert not np.array_equal(other_seed.batch(0)[1], stream[0][1])


def test_random_crop_scales_follow_the_list_and_weights_follow_the_scales():
    images = [camera_crop(90, 120)]
    source = TrainingSource(images, scales=(2, 2, 3, 4), mode="random_crop", batch_size=400,
                            scale_weights={2: 2.0, 3: 1.5, 4: 1.0})
    scales = source.batch_scales(0)
    share = {s: np.mean(scales == s) for s in (2, 3, 4)}
    assert share[2] == pytest.approx(0.5, abs=0.08) and share[4] == pytest.approx(0.25, abs=0.08)
    lr, hr, weights = source.batch(0)
    np.testing.assert_array_equal(weights, np.select([scales == 2, scales == 3], [2.0, 1.5], 1.0))
    # The scale of a pair is the one it was degraded at: x4 pairs are blurrier than x2 pairs.
    error = np.mean((lr - hr) ** 2, axis=(1, 2, 3))
    assert np.mean(error[scales == 4]) > 2 * np.mean(error[scales == 2])


def test_images_smaller_than_a_patch_are_refused_with_a_clear_message():
    with pytest.raises(ValueError, match=r"no training image is at least 41x41 pixels at scale\(s\) \[2, 3, 4\]"):
        TrainingSource([camera_crop(40, 200)])
    with pytest.raises(ValueError, match="2-D uint8"):
        TrainingSource([np.zeros((50, 50), np.float32)])
    with pytest.raises(ValueError, match="scales must be integers >= 2"):
        TrainingSource([camera_crop(50, 50)], scales=(1.5,))
    with pytest.raises(ValueError, match="no weight for scale"):
        TrainingSource([camera_crop(50, 50)], scales=(2, 3), scale_weights={2: 1.0})


@pytest.mark.parametrize("mode", ["paper", "random_crop"])
def test_tf_data_feed_gives_the_generators_batches_pair_for_pair(mode):
    from training.lib.data.tf_dataset import training_dataset

    images = [camera_crop(90, 120), camera_crop(60, 70)]
    source = TrainingSource(images, mode=mode, batch_size=4, seed=2, scale_weights={2: 1, 3: 2, 4: 3})
    fed = list(training_dataset(source, 3, 11).as_numpy_iterator())
    expected = list(batches(source, 3, 11))
    assert len(fed) == len(expected) == 8
    for got, want in zip(fed, expected):
        assert len(got) == len(want) == 3
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)


def test_prefetched_keeps_the_order_raises_where_the_source_fails_and_ends_when_closed():
    import threading

    from training.lib.data.source import prefetched

    assert list(prefetched(iter(range(50)), depth=3)) == list(range(50))

    def failing():
        yield 1
        raise ValueError("bad image")

    stream = prefetched(failing())
    assert next(stream) == 1
    with pytest.raises(ValueError, match="bad image"):
        next(stream)

    # A consumer that stops early (Keras's fit at the epoch's last step): the producer, blocked on
    # the full queue of an endless source, ends instead of waiting for ever.
    before = threading.active_count()
    endless = prefetched(itertools.count(), depth=2)
    assert [next(endless) for _ in range(5)] == [0, 1, 2, 3, 4]
    endless.close()
    assert threading.active_count() == before
