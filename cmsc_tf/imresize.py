"""MATLAB-exact bicubic ``imresize``: a float64 NumPy reference and a TensorFlow twin.

Super-resolution numbers move by hundredths of a dB with the resize kernel, so
both functions follow MATLAB's ``imresize(A, scale, 'bicubic')`` step by step
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

# Output lengths above this are refused: a dense weight matrix of that size
# is already hundreds of MB, and no benchmark image comes close.
MAX_OUTPUT_LENGTH = 1 << 15
# MATLAB's bicubic kernel has support [-2, 2].
_KERNEL_WIDTH = 4.0


# ----------------------------------------------------------------------------
# NumPy reference (float64)
# ----------------------------------------------------------------------------


def _cubic_np(t):
    """MATLAB's cubic convolution kernel (a = -0.5)."""
    absx = np.abs(t)
    absx2 = absx * absx
    absx3 = absx2 * absx
    return (1.5 * absx3 - 2.5 * absx2 + 1) * (absx <= 1) + (
        -0.5 * absx3 + 2.5 * absx2 - 4 * absx + 2
    ) * ((absx > 1) & (absx <= 2))


def weight_matrix_np(in_length, out_length, scale):
    """The ``(out_length, in_length)`` float64 matrix of one 1-D MATLAB bicubic resize.

    Mirrors MATLAB's ``contributions``; the dropped all-zero tap columns of
    MATLAB make no difference in a dense matrix.
    """
    if scale < 1:  # antialiasing: stretch the kernel
        kernel_scale = scale
        width = _KERNEL_WIDTH / scale
    else:
        kernel_scale = 1.0
        width = _KERNEL_WIDTH
    x = np.arange(1, out_length + 1, dtype=np.float64)[:, None]
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = left + np.arange(math.ceil(width) + 2, dtype=np.float64)[None, :]
    weights = kernel_scale * _cubic_np(kernel_scale * (u - taps))
    weights = weights / np.sum(weights, axis=1, keepdims=True)
    # Symmetric padding that repeats the edge pixel: 1..L, L..1, repeated.
    period = np.concatenate([np.arange(in_length), np.arange(in_length)[::-1]])
    columns = period[np.mod(taps.astype(np.int64) - 1, 2 * in_length)]
    matrix = np.zeros((out_length, in_length), dtype=np.float64)
    rows = np.broadcast_to(np.arange(out_length)[:, None], columns.shape)
    np.add.at(matrix, (rows, columns), weights)
    return matrix


def _check_length(name, in_length, out_length):
    if out_length < 1:
        raise ValueError(f"imresize: the output {name} would be empty ({in_length} -> {out_length}).")
    if out_length > MAX_OUTPUT_LENGTH:
        raise ValueError(
            f"imresize: the output {name} would be {out_length} pixels "
            f"(from {in_length}); the limit is {MAX_OUTPUT_LENGTH}."
        )


def _scales_and_shape(in_shape, scale, output_shape):
    """MATLAB's rule: a scale gives ``ceil(scale * size)``; a size gives ``scale = out / in``."""
    if (scale is None) == (output_shape is None):
        raise ValueError("imresize: give exactly one of `scale` and `output_shape`.")
    if scale is not None:
        scales = tuple(float(s) for s in np.broadcast_to(np.asarray(scale, dtype=np.float64), (2,)))
        for s in scales:
            if not (math.isfinite(s) and s > 0):
                raise ValueError(f"imresize: scale must be a finite positive number, got {scale!r}.")
        out_shape = tuple(int(math.ceil(n * s)) for n, s in zip(in_shape, scales))
    else:
        out_shape = tuple(int(n) for n in output_shape)
        if len(out_shape) != 2 or any(n != float(m) for n, m in zip(out_shape, output_shape)):
            raise ValueError(f"imresize: output_shape must be two integers, got {output_shape!r}.")
        scales = tuple(o / i for o, i in zip(out_shape, in_shape))
    for name, n_in, n_out in zip(("height", "width"), in_shape, out_shape):
        _check_length(name, n_in, n_out)
    return scales, out_shape


def _round_uint8(a):
    # MATLAB rounds halves away from zero; the values are non-negative once clipped.
    return np.floor(np.clip(a, 0, 255) + 0.5)


def imresize_np(image, scale=None, output_shape=None):
    """MATLAB ``imresize(image, scale, 'bicubic')`` in float64.

    Args:
      image: ``[H, W]`` or ``[H, W, C]`` array, uint8 or floating point.
      scale: a positive number (or a ``(row, column)`` pair); output size
        ``ceil(scale * size)``.
      output_shape: ``(out_H, out_W)`` instead of ``scale``.

    Returns:
      uint8 for uint8 input (rounded and clipped after each dimension, as
      MATLAB does), float64 otherwise (no rounding, no clipping).
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"imresize_np: image must be [H, W] or [H, W, C], got shape {image.shape}.")
    is_uint8 = image.dtype == np.uint8
    if not (is_uint8 or np.issubdtype(image.dtype, np.floating)):
        raise TypeError(f"imresize_np: image must be uint8 or floating point, got {image.dtype}.")
    if min(image.shape[:2]) < 1:
        raise ValueError(f"imresize_np: image is empty, shape {image.shape}.")
    scales, out_shape = _scales_and_shape(image.shape[:2], scale, output_shape)
    result = image.astype(np.float64)
    # Smaller scale first, rows first on ties (a stable sort, as MATLAB's).
    for axis in sorted((0, 1), key=lambda a: scales[a]):
        matrix = weight_matrix_np(image.shape[axis], out_shape[axis], scales[axis])
        result = np.moveaxis(np.tensordot(matrix, result, axes=([1], [axis])), 0, axis)
        if is_uint8:
            result = _round_uint8(result)
    return result.astype(np.uint8) if is_uint8 else result


# ----------------------------------------------------------------------------
# TensorFlow twin (float32 images, float64 geometry)
# ----------------------------------------------------------------------------


def _cubic_tf(t):
    absx = tf.abs(t)
    absx2 = absx * absx
    absx3 = absx2 * absx
    inner = tf.cast(absx <= 1, t.dtype)
    outer = tf.cast((absx > 1) & (absx <= 2), t.dtype)
    return (1.5 * absx3 - 2.5 * absx2 + 1) * inner + (-0.5 * absx3 + 2.5 * absx2 - 4 * absx + 2) * outer


def weight_matrix_tf(in_length, out_length, scale):
    """In-graph twin of :func:`weight_matrix_np`: lengths int32 tensors, scale float64 tensor.

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
    weights = kernel_scale * _cubic_tf(kernel_scale * (u - taps))
    weights = weights / tf.reduce_sum(weights, axis=1, keepdims=True)
    # Mirror with the edge repeated: position p of period 2L maps to p or 2L-1-p.
    period = 2 * in_length
    position = tf.math.floormod(tf.cast(taps, tf.int32) - 1, period)
    columns = tf.where(position < in_length, position, period - 1 - position)
    rows = tf.broadcast_to(tf.range(out_length)[:, None], tf.shape(columns))
    # scatter_nd sums duplicate (row, column) pairs, as mirrored taps need.
    matrix = tf.scatter_nd(
        tf.stack([rows, columns], axis=-1), weights, tf.stack([out_length, in_length])
    )
    return tf.cast(matrix, tf.float32)


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
