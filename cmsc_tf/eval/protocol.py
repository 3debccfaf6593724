"""The per-image evaluation protocol of the CMSC paper's Table III.

One HR image and one integer scale ``s`` (``protocol.md``; ``docs/evaluation.md``):
modcrop, the protocol luminance (uint8, rounded; grayscale kept as is),
``y = Y / 255``, network input ``x = imresize(imresize(y, 1/s), s)`` in float64
without rounding or clipping (:mod:`cmsc_tf.numerics.degradation`), prediction
``sr = predictor(x)``, and the metrics on ``y * 255`` and ``sr * 255`` with
``s`` pixels shaved from every border.

:func:`score_image` is the single path every method goes through: the bicubic
baseline is the identity predictor, a network is a predictor that runs the
model. Keeping one path is what makes the Bicubic rows a test of the model rows.
"""

import time

import numpy as np

from cmsc_tf.eval import metrics
from cmsc_tf.numerics import color
from cmsc_tf.numerics.degradation import downscale, modcrop, upscale

# Name -> function of (reference, distorted) on the 0..255 scale.
METRICS = {"psnr": metrics.psnr, "ssim": metrics.ssim, "ifc": metrics.ifc}


def check_scale(scale):
    """The protocol's scales are integers >= 2 (modcrop needs an integer)."""
    if isinstance(scale, bool) or int(scale) != scale or scale < 2:
        raise ValueError(f"scale must be an integer >= 2, got {scale!r}.")
    return int(scale)


def shave(image, border):
    """Removes ``border`` pixels from every side of the first two axes."""
    image = np.asarray(image)
    if border == 0:
        return image
    if min(image.shape[:2]) <= 2 * border:
        raise ValueError(f"cannot shave {border} pixels from an image of shape {image.shape}.")
    return image[border:-border, border:-border]


def hr_luminance(hr_uint8, scale):
    """``y``: the modcropped protocol luminance in [0, 1], float64."""
    return color.luminance(modcrop(hr_uint8, scale)).astype(np.float64) / 255


def to_image(output, shape):
    """A [1, H, W, 1] model output as the float64 [H, W] image that is scored, clipped to [0, 1]
    (a displayed image cannot leave that range; every predictor of a network goes through it)."""
    array = np.asarray(output, dtype=np.float64)
    if array.ndim != 4 or array.shape[0] != 1 or array.shape[-1] != 1:
        raise ValueError(f"the model returned shape {array.shape}; expected [1, H, W, 1].")
    return np.clip(array[0, :, :, 0], 0.0, 1.0)


def bicubic_predictor(x):
    """The Bicubic row: the prediction is the upsampled input itself."""
    return x


def score_image(y, scale, predictor, metric_names=("psnr", "ssim", "ifc")):
    """Runs one image through the protocol.

    Args:
      y: HR luminance in [0, 1] (from :func:`hr_luminance`), float64 ``[H, W]``.
      scale: integer scale ``s``.
      predictor: callable ``x -> sr`` on float ``[H, W]`` arrays in [0, 1].
      metric_names: keys of :data:`METRICS`.

    Returns:
      ``(scores, sr, seconds)``: the metric values, the prediction, and the
      seconds spent producing it from the low-resolution image (bicubic
      upsampling plus the predictor).
    """
    scale = check_scale(scale)
    unknown = sorted(set(metric_names) - set(METRICS))
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; choose from {sorted(METRICS)}.")
    lr = downscale(y, scale)
    start = time.perf_counter()
    sr = np.asarray(predictor(upscale(lr, scale)), dtype=np.float64)
    seconds = time.perf_counter() - start
    if sr.shape != y.shape:
        raise ValueError(f"the prediction has shape {sr.shape}, expected {y.shape} (the input's).")
    reference, distorted = shave(y * 255, scale), shave(sr * 255, scale)
    scores = {name: METRICS[name](reference, distorted) for name in metric_names}
    return scores, sr, seconds
