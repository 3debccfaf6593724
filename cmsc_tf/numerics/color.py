"""Colour conversions with MATLAB's conventions (ITU-R BT.601, studio swing).

``rgb2ycbcr`` / ``ycbcr2rgb`` follow MATLAB's functions of the same name:

* uint8 in, uint8 out: ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255``
  with R, G, B in [0, 255], rounded (halves away from zero) and clipped;
* float in [0, 1], float out: the same affine map scaled to [0, 1], no rounding;
  ``ycbcr2rgb`` clips its float result to [0, 1] as MATLAB does.

``unit_to_uint8`` is the display rounding of a float [0, 1] image (MATLAB's
``im2uint8``: clipped, halves away from zero).

``luminance`` is the evaluation protocol's rule for turning any benchmark
image into the uint8 luminance that is scored (``protocol.md`` step 2).

NumPy only, so that it imports without TensorFlow (the JAX trainer uses it);
the float twins for graphs are in :mod:`cmsc_tf.numerics.color_tf`.
"""

import numpy as np

from cmsc_tf.numerics.rounding import matlab_uint8

# MATLAB's origT and origOffset (rgb2ycbcr.m): rows Y, Cb, Cr; RGB in [0, 1],
# YCbCr on the 0..255 scale.
_RGB_TO_YCBCR = np.array(
    [
        [65.481, 128.553, 24.966],
        [-37.797, -74.203, 112.0],
        [112.0, -93.786, -18.214],
    ]
)
_YCBCR_OFFSET = np.array([16.0, 128.0, 128.0])


def _check_three_channels(name, img):
    if img.ndim < 1 or img.shape[-1] != 3:
        raise ValueError(f"{name}: expected an image with 3 channels last, got shape {img.shape}.")


def _apply_affine(img, matrix, offset):
    """``matrix @ pixel + offset`` summed term by term in MATLAB's ``imlincomb`` order."""
    channels = [img[..., 0], img[..., 1], img[..., 2]]
    return np.stack(
        [
            matrix[p, 0] * channels[0] + matrix[p, 1] * channels[1] + matrix[p, 2] * channels[2] + offset[p]
            for p in range(3)
        ],
        axis=-1,
    )


def _check_dtype(name, img):
    if not (img.dtype == np.uint8 or np.issubdtype(img.dtype, np.floating)):
        raise TypeError(f"{name}: image must be uint8 or floating point, got {img.dtype}.")


def rgb2ycbcr(img):
    """MATLAB ``rgb2ycbcr``: uint8 -> uint8 (rounded); float in [0, 1] -> float64."""
    img = np.asarray(img)
    _check_three_channels("rgb2ycbcr", img)
    _check_dtype("rgb2ycbcr", img)
    # MATLAB scales origT by 1/255 for both classes; the offset stays on the
    # 0..255 scale for uint8 and is scaled by 1/255 for floats.
    matrix = _RGB_TO_YCBCR * (1 / 255)
    if img.dtype == np.uint8:
        return matlab_uint8(_apply_affine(img.astype(np.float64), matrix, _YCBCR_OFFSET))
    return _apply_affine(img.astype(np.float64), matrix, _YCBCR_OFFSET * (1 / 255))


def ycbcr2rgb(img):
    """MATLAB ``ycbcr2rgb``: uint8 -> uint8 (rounded); float -> float64 clipped to [0, 1]."""
    img = np.asarray(img)
    _check_three_channels("ycbcr2rgb", img)
    _check_dtype("ycbcr2rgb", img)
    inverse = np.linalg.inv(_RGB_TO_YCBCR)
    offset = inverse @ _YCBCR_OFFSET
    if img.dtype == np.uint8:
        return matlab_uint8(_apply_affine(img.astype(np.float64), 255 * inverse, -255 * offset))
    return np.clip(_apply_affine(img.astype(np.float64), 255 * inverse, -offset), 0.0, 1.0)


def unit_to_uint8(img):
    """A float image in [0, 1] -> uint8, clipped and rounded half away from zero (MATLAB ``im2uint8``)."""
    return matlab_uint8(np.asarray(img, np.float64) * 255.0)


def luminance(img):
    """The protocol's uint8 luminance of a uint8 image (``protocol.md`` step 2).

    RGB: the Y of MATLAB's uint8 ``rgb2ycbcr`` (rounded). Grayscale: the gray
    value itself (no 16..235 compression). An alpha channel is dropped.
    """
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise TypeError(f"luminance: expected a uint8 image, got {img.dtype}.")
    if img.ndim == 2:
        return img
    if img.ndim != 3 or img.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(
            f"luminance: expected [H, W] or [H, W, C] with C in 1..4 (gray, gray+alpha, RGB, RGBA), "
            f"got shape {img.shape}."
        )
    if img.shape[-1] <= 2:  # gray, or gray + alpha
        return img[..., 0]
    return rgb2ycbcr(img[..., :3])[..., 0]
