"""Tiled inference equals untiled inference; the x8 self-ensemble averages the 8 transforms and inverts them."""

import numpy as np
import pytest
import tensorflow as tf

from cmsc_tf.deploy.self_ensemble import TRANSFORMS, apply_self_ensemble
from cmsc_tf.deploy.tiling import apply_tiled, tile_spans
from deploy_models import small_cmsc


def test_tile_spans_partition_the_axis_and_grow_by_the_halo():
    spans = tile_spans(23, 10, 3)
    assert [(c0, c1) for _, _, c0, c1 in spans] == [(0, 10), (10, 20), (20, 23)]
    assert [(s0, s1) for s0, s1, _, _ in spans] == [(0, 13), (7, 23), (17, 23)]


@pytest.fixture(scope="module")
def network():
    model = small_cmsc()
    forward = tf.function(
        lambda y: model(y, training=False)[-1], input_signature=[tf.TensorSpec([1, None, None, 1], tf.float32)]
    )
    crops = []

    def run(y):
        crops.append(y.shape[:2])
        return forward(y[None])[0].numpy()

    return model, run, crops


def test_tiled_equals_untiled_with_odd_sizes_and_bounded_crops(network):
    model, run, crops = network
    halo = model.receptive_radius
    assert halo == 12
    image = np.random.default_rng(1).uniform(size=(53, 41, 1)).astype(np.float32)
    whole = run(image)
    crops.clear()
    tiled = apply_tiled(run, image, tile=17, halo=halo)
    # 53 rows and 41 columns in tiles of 17: 4 x 3 crops, none beyond tile + 2 halo.
    assert len(crops) == 12
    assert max(max(c) for c in crops) <= 17 + 2 * halo
    np.testing.assert_allclose(tiled, whole, rtol=0, atol=2e-5)
    # A halo short of the receptive radius must show at the tile seams:
    # this is what makes the equality above a real check.
    short = apply_tiled(run, image, tile=17, halo=halo - 3)
    assert np.abs(short - whole).max() > 1e-3


def test_self_ensemble_inverts_every_transform():
    image = np.random.default_rng(0).uniform(size=(7, 5, 2))
    seen = []

    def identity(x):
        seen.append(x.copy())
        return x

    np.testing.assert_allclose(apply_self_ensemble(identity, image), image, rtol=0, atol=1e-12)
    # The 8 inputs are the 8 distinct images of the dihedral group.
    expected = [np.rot90(image, k) for k in range(4)] + [np.rot90(np.fliplr(image), k) for k in range(4)]
    assert len(seen) == len(TRANSFORMS) == 8
    for candidate in expected:
        assert sum(x.shape == candidate.shape and np.array_equal(x, candidate) for x in seen) == 1


def test_self_ensemble_of_a_shift_is_the_four_neighbour_mean():
    # fn shifts the image one pixel to the right (zero fill). Each transform
    # turns "right" into one of the 4 directions, twice each over the 8, so
    # the correctly inverted average is the mean of the 4 neighbours.
    image = np.random.default_rng(2).uniform(size=(6, 9, 1))

    def shift_right(x):
        out = np.zeros_like(x)
        out[:, 1:] = x[:, :-1]
        return out

    padded = np.pad(image[..., 0], 1)
    neighbours = (padded[1:-1, :-2] + padded[1:-1, 2:] + padded[:-2, 1:-1] + padded[2:, 1:-1]) / 4
    np.testing.assert_allclose(apply_self_ensemble(shift_right, image)[..., 0], neighbours, atol=1e-12)
