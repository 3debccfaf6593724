"""The public VDSR weights load into the `vdsr` variant and compute VDSR."""

import numpy as np
import pytest
import tensorflow as tf

import cmsc_tf


def reference_vdsr(arrays, x):
    """VDSR written directly with tf.nn.conv2d: 20 convs, ReLU between, + x."""
    h = tf.constant(x)
    names = [f"conv{i:02d}" for i in range(20)]
    for i, name in enumerate(names):
        h = tf.nn.conv2d(h, arrays[name], strides=1, padding="SAME")
        if i < len(names) - 1:
            h = tf.nn.relu(h)
    return (h + x).numpy()


def test_loaded_vdsr_equals_plain_convolutions(shared_dir):
    path = shared_dir / "reference_models" / "vdsr_291_x234.npz"
    arrays = dict(np.load(path))
    model = cmsc_tf.load_vdsr_weights(cmsc_tf.build_model("vdsr"), str(path))
    x = np.random.default_rng(0).uniform(size=(1, 24, 31, 1)).astype("float32")
    np.testing.assert_allclose(model(x), reference_vdsr(arrays, x), atol=1e-5)


def test_load_errors_are_clear(shared_dir, tmp_path):
    path = str(shared_dir / "reference_models" / "vdsr_291_x234.npz")
    with pytest.raises(ValueError, match="build_model\\('vdsr'\\)"):
        cmsc_tf.load_vdsr_weights(cmsc_tf.build_model("cmsc", num_features=4, num_modules=1), path)
    with pytest.raises(ValueError, match="num_modules=18"):
        cmsc_tf.load_vdsr_weights(cmsc_tf.build_model("vdsr", num_modules=4), path)
    with pytest.raises(FileNotFoundError):
        cmsc_tf.load_vdsr_weights(cmsc_tf.build_model("vdsr"), str(tmp_path / "missing.npz"))
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a readable .npz"):
        cmsc_tf.load_vdsr_weights(cmsc_tf.build_model("vdsr"), str(corrupt))
