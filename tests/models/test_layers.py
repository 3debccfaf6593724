"""The MSC block, RFL subnetwork and ensemble layer against hand computations."""

import numpy as np
import pytest

import keras

from cmsc_tf.models.layers import (
    ConvUnit,
    MultiScaleCrossBlock,
    ResidualFeaturesSubnetwork,
    WeightedEnsemble,
)
from training.lib import keras_hooks


def np_conv_same(x, kernel):
    """'same' 2-D cross-correlation, x: (H, W, Cin), kernel: (k, k, Cin, Cout)."""
    k = kernel.shape[0]
    r = k // 2
    padded = np.pad(x, ((r, r), (r, r), (0, 0)))
    h, w = x.shape[:2]
    out = np.zeros((h, w, kernel.shape[3]))
    for i in range(k):
        for j in range(k):
            out += padded[i : i + h, j : j + w, :] @ kernel[i, j]
    return out


def np_leaky(x, slope=0.2):
    return np.where(x >= 0, x, slope * x)


def randomise_batch_norms(layer, rng):
    """Gives every BN layer non-trivial statistics so that inference-mode BN
    is a real affine map in the comparison, not the identity."""
    for sub in keras_hooks.all_layers(layer):
        if isinstance(sub, keras.layers.BatchNormalization):
            n = sub.gamma.shape[0]
            sub.gamma.assign(rng.uniform(0.5, 1.5, n))
            sub.beta.assign(rng.normal(0, 0.1, n))
            sub.moving_mean.assign(rng.normal(0, 0.1, n))
            sub.moving_variance.assign(rng.uniform(0.5, 2.0, n))


def np_unit(unit, x, act=True):
    """conv -> BN (inference) -> LReLU of a ConvUnit, from its weights."""
    y = np_conv_same(x, unit.conv.kernel.numpy().astype(np.float64))
    bn = unit.norm
    eps = bn.epsilon
    y = (y - bn.moving_mean.numpy()) / np.sqrt(bn.moving_variance.numpy() + eps)
    y = y * bn.gamma.numpy() + bn.beta.numpy()
    return np_leaky(y) if act else y


def np_branch(block, index, x):
    first, second = block.branches[index]
    return np_unit(second, np_unit(first, x), act=False)


@pytest.mark.parametrize("kernel_sizes", [(3, 5), (3, 3), (3, 7)])
def test_msc_block_matches_eq1(kernel_sizes):
    rng = np.random.default_rng(0)
    block = MultiScaleCrossBlock(num_features=4, kernel_sizes=kernel_sizes)
    a = rng.normal(size=(1, 9, 11, 4)).astype("float32")
    b = rng.normal(size=(1, 9, 11, 4)).astype("float32")
    block([a, b])
    randomise_batch_norms(block, rng)
    out_a, out_b = block([a, b], training=False)

    m = (a[0] + b[0]) / 2
    expected_a = np_leaky(np_branch(block, 0, a[0].astype(np.float64)) + m)
    expected_b = np_leaky(np_branch(block, 1, b[0].astype(np.float64)) + m)
    np.testing.assert_allclose(out_a[0], expected_a, atol=1e-4)
    np.testing.assert_allclose(out_b[0], expected_b, atol=1e-4)


def test_fused_msc_block_matches_eq2_without_activation():
    rng = np.random.default_rng(1)
    block = MultiScaleCrossBlock(num_features=4, kernel_sizes=(3, 5), fused=True)
    a = rng.normal(size=(1, 8, 8, 4)).astype("float32")
    b = rng.normal(size=(1, 8, 8, 4)).astype("float32")
    block([a, b])
    randomise_batch_norms(block, rng)
    out = block([a, b], training=False)

    expected = (
        np_branch(block, 0, a[0].astype(np.float64))
        + np_branch(block, 1, b[0].astype(np.float64))
        + (a[0] + b[0]) / 2
    )
    np.testing.assert_allclose(out[0], expected, atol=1e-4)
    # Eq. 2 has no activation: negative values survive unchanged.
    assert np.min(out) < 0


def test_block_on_one_tensor_feeds_both_branches():
    rng = np.random.default_rng(2)
    block = MultiScaleCrossBlock(num_features=3, kernel_sizes=(3, 5))
    x = rng.normal(size=(2, 6, 7, 3)).astype("float32")
    single = block(x, training=False)
    pair = block([x, x], training=False)
    for s, p in zip(single, pair):
        np.testing.assert_array_equal(s, p)


def np_msc(block, a, b):
    """Eq. 1 (or Eq. 2 when the block is fused) in NumPy from the block's weights."""
    m = (a + b) / 2
    left, right = np_branch(block, 0, a), np_branch(block, 1, b)
    if block.fused:
        return left + right + m
    return np_leaky(left + m), np_leaky(right + m)


@pytest.mark.parametrize("residual", [True, False])
def test_rfl_subnetwork_is_eq3(residual):
    """D_q = G_last(G(...G(f_q(D_{q-1})))) + D_{q-1}, all in NumPy; the first
    module gets f_q(D_{q-1}) on both branches."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(1, 7, 9, 4)).astype("float32")
    net = ResidualFeaturesSubnetwork(num_features=4, num_modules=3, kernel_sizes=(3, 5),
                                     residual=residual)
    net(x)
    randomise_batch_norms(net, rng)
    assert [b.fused for b in net.blocks] == [False, False, True]

    d = x[0].astype(np.float64)
    h = np_unit(net.entry, d)
    a, b = np_msc(net.blocks[0], h, h)
    a, b = np_msc(net.blocks[1], a, b)
    expected = np_msc(net.blocks[2], a, b) + (d if residual else 0)
    np.testing.assert_allclose(net(x, training=False)[0], expected, atol=1e-4)


def test_rfl_skip_rejects_mismatched_width():
    net = ResidualFeaturesSubnetwork(num_features=8, num_modules=1)
    with pytest.raises(ValueError, match="identity skip needs 8"):
        net(np.zeros((1, 5, 5, 4), "float32"))


def test_weighted_ensemble_starts_at_mean_and_is_linear():
    layer = WeightedEnsemble(3)
    ys = [np.full((1, 2, 2, 1), v, "float32") for v in (1.0, 2.0, 6.0)]
    np.testing.assert_allclose(layer(ys), np.full((1, 2, 2, 1), 3.0), rtol=1e-6)
    layer.stage_weights.assign([0.5, 0.0, 0.25])
    np.testing.assert_allclose(layer(ys), np.full((1, 2, 2, 1), 2.0), rtol=1e-6)


LAYER_CASES = [
    (ConvUnit, dict(num_features=5, kernel_size=3, activation="relu", batch_norm=False)),
    (ConvUnit, dict(num_features=4, kernel_size=5, sync_batch_norm=True)),
    (MultiScaleCrossBlock, dict(num_features=4, kernel_sizes=(3, 7), fused=True, fused_activation=True)),
    (MultiScaleCrossBlock, dict(num_features=4, kernel_sizes=(5, 5))),
    (ResidualFeaturesSubnetwork, dict(num_features=4, num_modules=2, module_type="conv", residual=False)),
    (ResidualFeaturesSubnetwork, dict(num_features=4, num_modules=2, kernel_sizes=(3, 5), entry_conv=False)),
    (WeightedEnsemble, dict(num_inputs=2)),
]


@pytest.mark.parametrize("cls,kwargs", LAYER_CASES)
def test_layer_config_round_trip(cls, kwargs):
    layer = cls(**kwargs, name="under_test")
    config = layer.get_config()
    for key, value in kwargs.items():
        stored = config[key]
        assert (list(stored) if isinstance(value, tuple) else stored) == (
            list(value) if isinstance(value, tuple) else value
        )
    clone = cls.from_config(config)
    assert clone.get_config() == config
    # Serialisation through Keras's registry finds the class by name.
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is cls and restored.get_config() == config

    rng = np.random.default_rng(4)
    if cls is WeightedEnsemble:
        x = [rng.normal(size=(1, 4, 4, 1)).astype("float32") for _ in range(2)]
    else:
        x = rng.normal(size=(1, 6, 6, 4)).astype("float32")
    layer(x)
    clone(x)
    clone.set_weights(layer.get_weights())
    for got, want in zip(keras.tree.flatten(clone(x)), keras.tree.flatten(layer(x))):
        np.testing.assert_array_equal(got, want)


def test_invalid_arguments_are_clear():
    with pytest.raises(ValueError, match="kernel_sizes"):
        MultiScaleCrossBlock(kernel_sizes=(3, 4))
    with pytest.raises(ValueError, match="activation"):
        MultiScaleCrossBlock(activation="gelu")
    with pytest.raises(ValueError, match="module_type"):
        ResidualFeaturesSubnetwork(module_type="dense")
