"""The upscaling factor: its range, its decimals, the output size (plain Python, no TensorFlow).

One home for what a scale means, shared by the TensorFlow paths
(``resampling``, ``Upscaler``, the exported graphs) and the ``cmsc-upscale``
command line, which checks ``--scale`` while parsing, before TensorFlow loads.
"""

import math

MIN_SCALE = 1.0
MAX_SCALE = 8.0
# Scales are taken to this many decimals, so that a float32 ``1.1`` sent to the
# SavedModel means the same double as Python's ``1.1`` (output size
# ``ceil(H * scale)`` depends on the last bit).
SCALE_DECIMALS = 6


def normalize_scale(scale):
    """A Python scale checked against [1, 8] and rounded to ``SCALE_DECIMALS``."""
    try:
        value = float(scale)
    except (TypeError, ValueError):
        raise ValueError(f"scale must be a number, got {scale!r}") from None
    if not (math.isfinite(value) and MIN_SCALE <= value <= MAX_SCALE):
        raise ValueError(f"scale must be between {MIN_SCALE:g} and {MAX_SCALE:g}, got {scale!r}")
    return round(value, SCALE_DECIMALS)


def output_size(height, width, scale):
    """MATLAB's output size ``ceil(size * scale)`` for a normalised scale."""
    return int(math.ceil(height * scale)), int(math.ceil(width * scale))
