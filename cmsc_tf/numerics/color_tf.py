"""MATLAB's float ``rgb2ycbcr`` / ``ycbcr2rgb`` as TensorFlow ops, for graphs.

Twins of :mod:`cmsc_tf.numerics.color` (same matrix and offset, float32, no
rounding), kept apart so that the NumPy colour module imports without
TensorFlow, as :mod:`imresize_np` / :mod:`imresize_tf` are.
"""

import numpy as np
import tensorflow as tf

from cmsc_tf.numerics.color import _RGB_TO_YCBCR, _YCBCR_OFFSET


def rgb2ycbcr_tf(img):
    """Float twin of :func:`cmsc_tf.numerics.color.rgb2ycbcr` for graphs: [..., 3] in [0, 1] -> float32 [0, 1] YCbCr."""
    return _affine_tf("rgb2ycbcr_tf", img, _RGB_TO_YCBCR / 255, _YCBCR_OFFSET / 255)


def ycbcr2rgb_tf(img):
    """Float twin of :func:`cmsc_tf.numerics.color.ycbcr2rgb` for graphs: [..., 3] YCbCr in [0, 1] -> float32 RGB clipped to [0, 1]."""
    inverse = np.linalg.inv(_RGB_TO_YCBCR)
    return tf.clip_by_value(_affine_tf("ycbcr2rgb_tf", img, 255 * inverse, -(inverse @ _YCBCR_OFFSET)), 0.0, 1.0)


def _affine_tf(name, img, matrix, offset):
    """``matrix @ pixel + offset`` for every pixel of a float image [..., 3], in float32."""
    img = tf.convert_to_tensor(img)
    if not img.dtype.is_floating:
        raise TypeError(f"{name}: expected a float image in [0, 1], got {img.dtype}.")
    if img.shape.rank is not None and img.shape[-1] != 3:
        raise ValueError(f"{name}: expected 3 channels last, got shape {img.shape}.")
    matrix, offset = tf.constant(matrix.T, tf.float32), tf.constant(offset, tf.float32)
    return tf.tensordot(tf.cast(img, tf.float32), matrix, axes=[[-1], [0]]) + offset
