"""The colour and resize steps around the network, shared by every deployment path.

CMSC is trained on luminance only (``protocol.md``), so super-resolving a
colour image is: MATLAB bicubic upsampling, MATLAB YCbCr split, the network
on Y, the bicubic Cb/Cr kept, recombination, rounding. The exported
SavedModel graph calls these functions; :class:`cmsc_tf.deploy.upscaler.Upscaler`
does the same steps with their NumPy twins (``imresize_np``, ``color``), so
that its default LiteRT path needs no TensorFlow, and gives the same pixels
within one grey level (``tests/deploy/test_fast_path.py``; the SavedModel's
signatures take RGB only, the Upscaler also handles gray and alpha).

All functions here are TensorFlow ops (usable eagerly and inside exported
graphs); the bicubic and the colour conversion are the evaluation branch's
``imresize_tf`` and ``rgb2ycbcr_tf`` / ``ycbcr2rgb_tf``.
"""

import tensorflow as tf

from cmsc_tf.deploy.scales import MAX_SCALE, MIN_SCALE, SCALE_DECIMALS, normalize_scale, output_size
from cmsc_tf.numerics.color_tf import rgb2ycbcr_tf, ycbcr2rgb_tf
from cmsc_tf.numerics.imresize_tf import MAX_OUTPUT_LENGTH, imresize_tf


def normalize_scale_tf(scale):
    """In-graph twin of :func:`normalize_scale`: a float64 scalar tensor, range-checked."""
    # Decimal text and back, not round(s * 1e6) / 1e6: graph optimisers may
    # turn that division into a multiplication by 1e-6, which is not the
    # same double (10 * 1.1 must give MATLAB's ceil(11.000000000000002) = 12).
    text = tf.strings.as_string(tf.cast(scale, tf.float32), precision=SCALE_DECIMALS)
    scale = tf.strings.to_number(text, tf.float64)
    checks = [
        tf.debugging.assert_greater_equal(
            scale, tf.constant(MIN_SCALE, tf.float64), message=f"scale must be at least {MIN_SCALE:g}"
        ),
        tf.debugging.assert_less_equal(
            scale, tf.constant(MAX_SCALE, tf.float64), message=f"scale must be at most {MAX_SCALE:g}"
        ),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(scale)


def upsample_ycbcr(rgb_uint8, scale):
    """``[..., H, W, 3]`` uint8 RGB -> (Y ``[..., h, w, 1]``, CbCr ``[..., h, w, 2]``), float32 in [0, 1].

    MATLAB ``rgb2ycbcr`` on the [0, 1] image, then MATLAB bicubic by
    ``scale`` without rounding or clipping (both steps are linear, so their
    order only changes float rounding).
    """
    upsampled = upsample_ycbcr_planes(rgb_uint8, scale)
    return upsampled[..., :1], upsampled[..., 1:]


def upsample_ycbcr_planes(rgb_uint8, scale):
    """:func:`upsample_ycbcr` as one ``[..., h, w, 3]`` YCbCr tensor (no copies of the split planes)."""
    return imresize_tf(rgb2ycbcr_tf(tf.cast(rgb_uint8, tf.float32) / 255.0), scale=scale)


def to_uint8(image):
    """[0, 1] float -> uint8, clipped and rounded half away from zero as MATLAB does."""
    return tf.cast(tf.floor(tf.clip_by_value(image, 0.0, 1.0) * 255.0 + 0.5), tf.uint8)


def merge_ycbcr(y, cbcr):
    """Network Y plus bicubic CbCr -> uint8 RGB (MATLAB ``ycbcr2rgb``, clipped, rounded)."""
    return to_uint8(ycbcr2rgb_tf(tf.concat([tf.cast(y, tf.float32), cbcr], axis=-1)))


__all__ = [
    "MAX_OUTPUT_LENGTH",
    "MAX_SCALE",
    "MIN_SCALE",
    "merge_ycbcr",
    "normalize_scale",
    "normalize_scale_tf",
    "output_size",
    "to_uint8",
    "upsample_ycbcr",
    "upsample_ycbcr_planes",
]
