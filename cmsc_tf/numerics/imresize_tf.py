"""MATLAB-exact bicubic ``imresize`` in TensorFlow: the in-graph twin of :mod:`imresize_np`.

Super-resolution numbers move by hundredths of a dB with the resize kernel, so
both twins (this one and the float64 NumPy reference
:func:`cmsc_tf.numerics.imresize_np.imresize_np`) follow MATLAB's ``imresize(A, scale, 'bicubic')`` step by step
(see ``docs/evaluation.md`` and the shared ``protocol.md``):

* cubic convolution kernel with a = -0.5; when shrinking, the kernel is
  stretched by ``1 / scale`` (antialiasing);
* output length ``ceil(in_length * scale)``; output pixel ``i`` (1-based) reads
  the input at ``u = i / scale + 0.5 * (1 - 1 / scale)``;
* taps that fall outside the image are mirrored with the edge pixel repeated;
* the dimension with the smaller scale factor is resized first (rows first on
  ties); uint8 images are rounded and clipped after each dimension, as
  MATLAB's resize kernel returns the class of its input.

Each 1-D resize is a dense ``(out_length, in_length)`` weight matrix applied
with a matrix product. Only the TensorFlow twin is graph-safe: it builds its
matrices in-graph from the (possibly dynamic) lengths and a (possibly tensor)
scale, so it works inside ``tf.data`` and exported graphs.
"""

import math

import numpy as np
import tensorflow as tf

# One kernel width and one output-length limit for both twins.
from cmsc_tf.numerics.imresize_np import _KERNEL_WIDTH, MAX_OUTPUT_LENGTH


# ----------------------------------------------------------------------------
# TensorFlow twin (float32 images, float64 geometry)
# ----------------------------------------------------------------------------


def cubic_tf(t):
    """MATLAB's bicubic kernel (a = -0.5) in ``t``'s dtype."""
    absx = tf.abs(t)
    absx2 = absx * absx
    absx3 = absx2 * absx
    inner = tf.cast(absx <= 1, t.dtype)
    outer = tf.cast((absx > 1) & (absx <= 2), t.dtype)
    return (1.5 * absx3 - 2.5 * absx2 + 1) * inner + (-0.5 * absx3 + 2.5 * absx2 - 4 * absx + 2) * outer


def weight_matrix_tf(in_length, out_length, scale):
    """In-graph twin of :func:`cmsc_tf.numerics.imresize_np.weight_matrix_np`: lengths int32 tensors, scale float64 tensor.

    The geometry (coordinates, taps, weights) is computed in float64 so that
    tap positions agree with MATLAB's exactly; the matrix is returned as float32.
    """
    scale = tf.cast(scale, tf.float64)
    shrink = scale < 1
    kernel_scale = tf.where(shrink, scale, tf.constant(1.0, tf.float64))
    width = _KERNEL_WIDTH / kernel_scale
    x = tf.range(1, out_length + 1, dtype=tf.int32)
    u = tf.cast(x, tf.float64)[:, None] / scale + 0.5 * (1 - 1 / scale)
    left = tf.floor(u - width / 2)
    num_taps = tf.cast(tf.math.ceil(width), tf.int32) + 2
    taps = left + tf.cast(tf.range(num_taps), tf.float64)[None, :]
    weights = kernel_scale * cubic_tf(kernel_scale * (u - taps))
    weights = weights / tf.reduce_sum(weights, axis=1, keepdims=True)
    return tf.cast(mirrored_matrix(tf.cast(taps, tf.int32), weights, in_length, out_length), tf.float32)


def mirrored_matrix(taps, weights, in_length, out_length):
    """The ``[out, in]`` matrix of 1-based tap positions ``taps`` (int32 ``[out, k]``) and their
    ``weights``, taps beyond the edges mirrored with the edge repeated (MATLAB's padding)."""
    # Position p of period 2L maps to p or 2L-1-p.
    period = 2 * in_length
    position = tf.math.floormod(taps - 1, period)
    columns = tf.where(position < in_length, position, period - 1 - position)
    rows = tf.broadcast_to(tf.range(out_length)[:, None], tf.shape(columns))
    # scatter_nd sums duplicate (row, column) pairs, as mirrored taps need.
    return tf.scatter_nd(tf.stack([rows, columns], axis=-1), weights, tf.stack([out_length, in_length]))


def _out_length_tf(in_length, scale):
    return tf.cast(tf.math.ceil(tf.cast(in_length, tf.float64) * scale), tf.int32)


def _validated_scale_tf(scale):
    """A float64 scalar tensor; Python numbers are checked at trace time."""
    if isinstance(scale, (int, float, np.floating, np.integer)):
        if not (math.isfinite(float(scale)) and scale > 0):
            raise ValueError(f"imresize_tf: scale must be a finite positive number, got {scale!r}.")
        return tf.constant(float(scale), tf.float64)
    scale = tf.convert_to_tensor(scale)
    if scale.shape.rank not in (None, 0):
        raise ValueError(f"imresize_tf: scale must be a scalar, got shape {scale.shape}.")
    if not (scale.dtype.is_floating or scale.dtype.is_integer):
        raise TypeError(f"imresize_tf: scale must be numeric, got {scale.dtype}.")
    scale = tf.cast(scale, tf.float64)
    tf.debugging.assert_positive(scale, message="imresize_tf: scale must be positive")
    tf.debugging.assert_all_finite(scale, message="imresize_tf: scale must be finite")
    return scale


def imresize_tf(image, scale=None, output_shape=None):
    """MATLAB ``imresize(image, scale, 'bicubic')`` in TensorFlow, float32.

    Args:
      image: ``[H, W, C]`` or ``[B, H, W, C]`` tensor (any real dtype; computed
        in float32, no rounding or clipping); H and W may be dynamic.
      scale: a positive Python number or a scalar tensor. Pass float64 tensors
        (for example ``1 / tf.cast(s, tf.float64)``): a float32 ``1/3`` is not
        the double MATLAB uses and can change ``ceil(H * scale)``.
      output_shape: ``(out_H, out_W)``, Python ints or an int tensor of 2,
        instead of ``scale``.

    Returns:
      float32 tensor of the same rank. Both 1-D resizes are linear, so their
      order only matters for rounding, and this float32 version always does
      rows first.
    """
    if (scale is None) == (output_shape is None):
        raise ValueError("imresize_tf: give exactly one of `scale` and `output_shape`.")
    image = tf.convert_to_tensor(image)
    rank = image.shape.rank
    if rank not in (3, 4):
        raise ValueError(f"imresize_tf: image must be [H, W, C] or [B, H, W, C], got shape {image.shape}.")
    if not (image.dtype.is_floating or image.dtype.is_integer):
        raise TypeError(f"imresize_tf: image must be numeric, got {image.dtype}.")
    batched = image if rank == 4 else image[None]
    batched = tf.cast(batched, tf.float32)
    shape = tf.shape(batched)
    in_h, in_w = shape[1], shape[2]
    tf.debugging.assert_positive(tf.minimum(in_h, in_w), message="imresize_tf: image is empty")
    if scale is not None:
        scale_h = scale_w = _validated_scale_tf(scale)
        out_h, out_w = _out_length_tf(in_h, scale_h), _out_length_tf(in_w, scale_w)
    else:
        if isinstance(output_shape, (tuple, list)) and all(isinstance(n, int) for n in output_shape):
            if len(output_shape) != 2 or min(output_shape) < 1 or max(output_shape) > MAX_OUTPUT_LENGTH:
                raise ValueError(
                    f"imresize_tf: output_shape must be two integers in [1, {MAX_OUTPUT_LENGTH}], "
                    f"got {output_shape!r}."
                )
        output_shape = tf.cast(tf.convert_to_tensor(output_shape), tf.int32)
        tf.debugging.assert_equal(tf.size(output_shape), 2, message="imresize_tf: output_shape must have 2 entries")
        out_h, out_w = output_shape[0], output_shape[1]
        scale_h = tf.cast(out_h, tf.float64) / tf.cast(in_h, tf.float64)
        scale_w = tf.cast(out_w, tf.float64) / tf.cast(in_w, tf.float64)
    for name, length in (("height", out_h), ("width", out_w)):
        tf.debugging.assert_positive(length, message=f"imresize_tf: the output {name} would be empty")
        tf.debugging.assert_less_equal(
            length, MAX_OUTPUT_LENGTH, message=f"imresize_tf: the output {name} exceeds {MAX_OUTPUT_LENGTH}"
        )
    rows = weight_matrix_tf(in_h, out_h, scale_h)
    cols = weight_matrix_tf(in_w, out_w, scale_w)
    resized = tf.einsum("oh,bhwc->bowc", rows, batched)
    resized = tf.einsum("pw,bowc->bopc", cols, resized)
    return resized if rank == 4 else resized[0]
