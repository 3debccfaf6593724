"""MATLAB-exact bicubic ``imresize`` in float64 NumPy: the reference.

The TensorFlow twin, and the rules both follow, are in
:mod:`cmsc_tf.numerics.imresize_tf`. This half lives on its own so that it
imports without TensorFlow: the trainer's NumPy source, `training.lib.data.source`,
builds its training pairs with it (through `cmsc_tf.numerics.degradation`), also
on machines that have only JAX.
"""

import functools
import math

import numpy as np

from cmsc_tf.numerics.rounding import matlab_uint8

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


@functools.lru_cache(maxsize=64)
def contributions_np(in_length, out_length, scale):
    """MATLAB's ``contributions`` of one 1-D bicubic resize: ``(columns, weights)``, each ``[out_length, taps]``.

    Output pixel ``i`` is ``sum_k weights[i, k] * input[columns[i, k]]``
    (0-based columns, already mirrored into ``0..in_length-1``; a column may
    repeat at the border). ``O(out_length)`` memory, unlike the dense matrix,
    so windows of huge images can be resized (:func:`window_matrix_np`).
    Cached and read-only.
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
    for array in (columns, weights):
        array.flags.writeable = False
    return columns, weights


def _dense(columns, weights, in_length):
    matrix = np.zeros((columns.shape[0], in_length), dtype=np.float64)
    rows = np.broadcast_to(np.arange(columns.shape[0])[:, None], columns.shape)
    # add.at sums duplicate (row, column) pairs, as mirrored taps need.
    np.add.at(matrix, (rows, columns), weights)
    return matrix


# Benchmark sets repeat a few image sizes: reuse their matrices (read-only).
@functools.lru_cache(maxsize=64)
def weight_matrix_np(in_length, out_length, scale):
    """The ``(out_length, in_length)`` float64 matrix of one 1-D MATLAB bicubic resize.

    Mirrors MATLAB's ``contributions``; the dropped all-zero tap columns of
    MATLAB make no difference in a dense matrix. The result is cached and
    read-only.
    """
    matrix = _dense(*contributions_np(in_length, out_length, scale), in_length)
    matrix.flags.writeable = False
    return matrix


def window_matrix_np(in_length, out_length, scale, out_start, out_stop):
    """Rows ``out_start:out_stop`` of :func:`weight_matrix_np`, cut to the input they read.

    Returns ``(in_start, in_stop, matrix)``: ``matrix @ input[in_start:in_stop]``
    is ``weight_matrix_np(...)[out_start:out_stop] @ input``, as the columns
    left out hold only zeros. The input window is exactly the taps of those
    output pixels (4 for upscaling: ``floor(u - 2) + 1 .. floor(u - 2) + 4``
    around ``u = (i + 0.5) / scale + 0.5``, 1-based, mirrored at the edges),
    so no extra margin is needed and none is guessed.
    """
    columns, weights = contributions_np(in_length, out_length, scale)
    columns, weights = columns[out_start:out_stop], weights[out_start:out_stop]
    # Zero-weight taps are dropped, so the window is no wider than needed.
    used = weights != 0
    in_start, in_stop = int(columns[used].min()), int(columns[used].max()) + 1
    # A dropped tap adds its zero weight to column 0 of the window: no change.
    local = np.where(used, columns - in_start, 0)
    return in_start, in_stop, _dense(local, weights, in_stop - in_start)


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
        matrix = weight_matrix_np(int(image.shape[axis]), int(out_shape[axis]), float(scales[axis]))
        result = np.moveaxis(np.tensordot(matrix, result, axes=([1], [axis])), 0, axis)
        if is_uint8:
            result = matlab_uint8(result)  # each pass, as MATLAB
    return result.astype(np.uint8) if is_uint8 else result


