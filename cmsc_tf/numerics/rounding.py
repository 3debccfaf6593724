"""MATLAB's conversion of doubles to uint8, the one rounding rule of the protocol's images.

NumPy only (it imports without TensorFlow).
"""

import numpy as np


def matlab_uint8(values):
    """MATLAB's ``uint8(values)``: clipped to [0, 255], halves rounded away from zero, as uint8."""
    return np.floor(np.clip(values, 0, 255) + 0.5).astype(np.uint8)
