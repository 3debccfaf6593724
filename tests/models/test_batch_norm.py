"""The fused batch normalisation against Keras's own layer: outputs, moving statistics, gradients."""

import keras
import numpy as np
import pytest

from cmsc_tf.models.batch_norm import BatchNormalization
from cmsc_tf.models.dtype_policy import dtype_policy

tf = pytest.importorskip("tensorflow")
pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="the fused path is TensorFlow's; other backends run Keras's layer itself")


def _pair(policy, momentum=0.9):
    """A fused layer and a Keras one with the same (non-trivial) weights and statistics."""
    rng = np.random.default_rng(1)
    layers = []
    with dtype_policy(policy):
        for cls in (BatchNormalization, keras.layers.BatchNormalization):
            layer = cls(momentum=momentum)
            layer.build((None, 7, 9, 5))
            layers.append(layer)
    gamma, beta = rng.uniform(0.5, 2, 5), rng.normal(0, 1, 5)
    mean, variance = rng.normal(0, 1, 5), rng.uniform(0.5, 2, 5)
    for layer in layers:
        layer.set_weights([w.astype("float32") for w in (gamma, beta, mean, variance)])
    return layers


def _input(dtype):
    rng = np.random.default_rng(2)
    return tf.cast(rng.normal(3.0, 2.0, (4, 7, 9, 5)).astype("float32"), dtype)


def _train_call(layer, x):
    """Output and gradients (input, gamma, beta) of sum(output * a fixed pattern), in training mode."""
    pattern = tf.constant(np.random.default_rng(3).normal(size=(4, 7, 9, 5)).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(tf.cast(y, "float32") * pattern)
    grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
    return y, grads


def test_the_fused_path_is_the_one_taken():
    fused, _ = _pair("float32")
    x = _input("float32")
    assert fused._fused(x, True, None)
    assert not fused._fused(x, False, None)  # inference: Keras's own path
    fused.trainable = False
    assert not fused._fused(x, True, None)  # a frozen layer normalises with its moving statistics, as in Keras


@pytest.mark.parametrize("policy, tolerance", [("float32", 1e-5), ("mixed_bfloat16", 2e-2)])
def test_training_step_matches_keras(policy, tolerance):
    fused, reference = _pair(policy)
    x = _input("bfloat16" if policy == "mixed_bfloat16" else "float32")
    (y_fused, g_fused), (y_ref, g_ref) = _train_call(fused, x), _train_call(reference, x)
    assert y_fused.dtype == y_ref.dtype
    np.testing.assert_allclose(np.float32(y_fused), np.float32(y_ref), atol=tolerance, rtol=tolerance)
    for a, b in zip(g_fused, g_ref):
        scale = float(np.abs(np.float32(b)).max())
        np.testing.assert_allclose(np.float32(a), np.float32(b), atol=tolerance * scale, rtol=tolerance)
    # The moving statistics moved by the same update: the biased batch variance, Keras's momentum.
    for a, b in zip(fused.get_weights()[2:], reference.get_weights()[2:]):
        np.testing.assert_allclose(a, b, rtol=1e-5 if policy == "float32" else 1e-2)


def test_moving_statistics_by_hand():
    """momentum 0.5 from mean 0, variance 1: the new statistics are the average with the batch's (biased) ones."""
    fused = BatchNormalization(momentum=0.5)
    fused.build((None, 7, 9, 5))
    x = _input("float32")
    fused(x, training=True)
    flat = np.float64(x).reshape(-1, 5)
    np.testing.assert_allclose(fused.moving_mean.numpy(), 0.5 * flat.mean(0), rtol=1e-5)
    np.testing.assert_allclose(fused.moving_variance.numpy(), 0.5 + 0.5 * flat.var(0), rtol=1e-5)


def test_inside_a_traced_train_step(monkeypatch):
    """A CMSC's training-mode forward pass in a tf.function: the fused kernel gives Keras's layer's outputs."""
    from cmsc_tf.models.model import build_model

    x = np.random.default_rng(0).random((2, 12, 12, 1), np.float32)
    model = build_model("cmsc", num_features=8, num_stages=1, num_modules=1)
    weights = model.get_weights()
    forward = tf.function(lambda v: model(v, training=True))
    op_types = {op.type for op in forward.get_concrete_function(x).graph.get_operations()}
    model.set_weights(weights)  # tracing ran the moving-statistics updates once
    assert "FusedBatchNormV3" in op_types
    fused_outputs = forward(x)
    fused_statistics = model.get_weights()
    model.set_weights(weights)
    monkeypatch.setattr(BatchNormalization, "_fused", lambda *args: False)
    keras_forward = tf.function(lambda v: model(v, training=True))
    assert "FusedBatchNormV3" not in {op.type for op in keras_forward.get_concrete_function(x).graph.get_operations()}
    model.set_weights(weights)
    keras_outputs = keras_forward(x)
    for a, b in zip(fused_outputs, keras_outputs):
        np.testing.assert_allclose(np.float32(a), np.float32(b), atol=1e-4)
    for a, b in zip(fused_statistics, model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
