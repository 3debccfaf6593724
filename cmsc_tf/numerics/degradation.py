"""The degradation of the CMSC protocol, in one place: HR -> LR -> bicubic network input.

``protocol.md`` (and ``docs/evaluation.md``) define the low-resolution image
of an HR image ``y`` at integer scale ``s`` as MATLAB's bicubic
``imresize(y, 1/s)`` and the network input as ``imresize`` of that by ``s``,
both in float64 without rounding or clipping. Training pairs, evaluation,
int8 calibration and the colour of saved predictions all use these functions,
so a change to the degradation changes all of them together.

Callers :func:`modcrop` the HR image first: then ``1/s`` maps every side to
an integer length and :func:`degrade` returns an image of the HR image's size.

NumPy only (no TensorFlow), so the JAX trainer can use it.
"""

import numpy as np

from cmsc_tf.numerics.imresize_np import imresize_np


def modcrop(image, scale):
    """Drops the last ``H mod s`` rows and ``W mod s`` columns of ``[H, W]`` or ``[H, W, C]``."""
    image = np.asarray(image)
    height, width = image.shape[:2]
    return image[: height - height % scale, : width - width % scale]


def downscale(y, scale):
    """The low-resolution image: MATLAB bicubic ``imresize(y, 1/s)``, float64, unrounded."""
    return imresize_np(y, 1 / scale)


def upscale(lr, scale):
    """The network input from a low-resolution image: MATLAB bicubic ``imresize(lr, s)``, float64, unrounded."""
    return imresize_np(lr, scale)


def degrade(hr, scale):
    """``upscale(downscale(hr, s), s)``: the bicubic network input of a (modcropped) HR image.

    ``hr``: ``[H, W]`` or ``[H, W, C]``, float in [0, 1] (uint8 is accepted by
    ``imresize_np`` but is rounded after every 1-D pass, which the protocol
    does not do).
    """
    return upscale(downscale(hr, scale), scale)
