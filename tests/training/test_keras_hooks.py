"""The private Keras hooks of training/lib/keras_hooks.py, pinned: each test fails when Keras changes one.

The end-to-end checks are elsewhere (BN recalibration in test_train_run.py, clipping on
2 replicas and the multi-worker fit in test_distributed.py); these name the hook that moved.
"""

import inspect

import keras
import numpy as np

import cmsc_tf
from training.lib import keras_hooks, optimizers


def test_all_layers_reaches_the_batch_norm_inside_the_cmsc_layers():
    model = cmsc_tf.build_model("cmsc", num_features=8, num_stages=2, num_modules=1)
    layers = keras_hooks.all_layers(model)
    assert model not in layers
    batch_norms = [layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization)]
    # docs/model.md: feature extraction 1, per stage the entry unit 1 + 4 per MSC module.
    assert len(batch_norms) == 1 + 2 * (1 + 4)
    assert not [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def test_the_optimizer_clips_through_the_overridden_hook():
    assert list(inspect.signature(keras.optimizers.Optimizer._clip_gradients).parameters) == ["self", "grads"]
    calls = []

    class Recording(keras.optimizers.SGD):
        def _clip_gradients(self, grads):
            calls.append(len(grads))
            return super()._clip_gradients(grads)

    variable = keras.Variable(np.zeros(3, np.float32))
    optimizer = Recording(1.0, clipvalue=0.4)
    optimizer.apply_gradients([(keras.ops.convert_to_tensor(np.array([2.0, -0.1, -5.0], np.float32)),
                                variable)])
    assert calls == [1]
    np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), [-0.4, 0.1, 0.4])


def test_several_replicas_get_the_clip_after_all_reduce_optimizer():
    one = optimizers.make_optimizer("sgd", 0.1, clip="value", replicas=1)
    two = optimizers.make_optimizer("sgd", 0.1, clip="value", replicas=2)
    assert not isinstance(one, keras_hooks.ClipAfterAllReduce)
    assert isinstance(two, keras_hooks.ClipAfterAllReduce) and isinstance(two, keras.optimizers.SGD)
    assert two.clipvalue == 0.4 and two.momentum == 0.9
    assert optimizers.make_optimizer("adam", 1e-3, clip="global_norm", clip_threshold=2.0).global_clipnorm == 2.0


def test_the_symbolic_build_hooks_of_the_multi_worker_fit_exist():
    build = inspect.signature(keras.Model._symbolic_build).parameters
    assert "data_batch" in build
    assert set(inspect.signature(keras.Model._maybe_symbolic_build).parameters) >= {"iterator", "data_batch"}
    model = cmsc_tf.build_model("cmsc", num_features=4, num_stages=1, num_modules=1)
    model.compile("adam", **cmsc_tf.cascade_loss(model))
    shape = (2, 9, 9, 1)
    model._symbolic_build(data_batch=(np.zeros(shape, np.float32), np.zeros(shape, np.float32)))
    assert model.built and model.compiled_loss is not None


def test_adjustable_clipping_bounds_each_element_by_threshold_over_the_current_rate():
    """VDSR's clipping: g clipped to [-t/lr, t/lr], so a plain SGD step moves each weight by <= t.
    The bound must follow the rate variable when a schedule changes it, without a new optimizer."""
    optimizer = optimizers.make_optimizer("sgd", 0.1, momentum=0.0, clip="adjustable", clip_threshold=0.4)
    assert isinstance(optimizer, keras_hooks.AdjustableClipping) and optimizer.clipvalue is None
    variable = keras.Variable(np.zeros(3, np.float32))
    gradient = keras.ops.convert_to_tensor(np.array([10.0, -1.0, -50.0], np.float32))
    optimizer.apply_gradients([(gradient, variable)])
    # lr 0.1: bound 4, so the gradient becomes [4, -1, -4] and the step -0.1 * that.
    np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), [-0.4, 0.1, 0.4], rtol=1e-6)
    optimizer.learning_rate = 0.01  # bound 40: [10, -1, -40]
    optimizer.apply_gradients([(gradient, variable)])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), [-0.5, 0.11, 0.8], rtol=1e-6)


def test_adjustable_clipping_follows_the_rate_inside_a_compiled_train_step():
    """A schedule changing lr between fits of one compiled step changes the bound (no retrace
    bakes the first rate in). Linear model, MSE summed: hand-derived steps."""
    inputs = keras.Input((1,))
    model = keras.Model(inputs, keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")(inputs))
    model.compile(optimizers.make_optimizer("sgd", 0.1, momentum=0.0, clip="adjustable", clip_threshold=0.4),
                  loss="mse")
    x, y = np.array([[1.0]], np.float32), np.array([[100.0]], np.float32)
    model.train_on_batch(x, y)  # gradient -200 clipped to -4: w = 0.4
    np.testing.assert_allclose(model.get_weights()[0], [[0.4]], rtol=1e-6)
    model.optimizer.learning_rate = 0.001  # bound 400: gradient 2(0.4 - 100) = -199.2 unclipped
    model.train_on_batch(x, y)
    np.testing.assert_allclose(model.get_weights()[0], [[0.4 + 0.1992]], rtol=1e-5)


def test_the_weights_file_made_in_memory_loads_as_the_one_save_weights_writes(tmp_path):
    model = cmsc_tf.build_model("cmsc", num_features=4, num_stages=1, num_modules=1)
    model.compile("adam", **cmsc_tf.cascade_loss(model))
    shape = (2, 9, 9, 1)
    model.fit(np.random.default_rng(0).random(shape, np.float32), np.zeros(shape, np.float32), verbose=0)
    (tmp_path / "memory.weights.h5").write_bytes(keras_hooks.weights_file_bytes(model))
    model.save_weights(str(tmp_path / "disk.weights.h5"))

    loaded = []
    for name in ("memory", "disk"):
        copy = cmsc_tf.build_model("cmsc", num_features=4, num_stages=1, num_modules=1)
        copy.compile("adam", **cmsc_tf.cascade_loss(copy))
        copy.optimizer.build(copy.trainable_variables)
        copy.load_weights(str(tmp_path / f"{name}.weights.h5"))
        loaded.append([keras.ops.convert_to_numpy(v) for v in copy.weights + copy.optimizer.variables])
    assert len(loaded[0]) == len(loaded[1]) > 0
    assert all(np.array_equal(a, b) for a, b in zip(*loaded))
    assert not all(np.array_equal(a, 0 * a) for a in loaded[0][-4:])  # the optimizer's moments came along
