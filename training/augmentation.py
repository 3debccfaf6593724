"""The paper's training-set augmentation and patch size, and the check of luminance images.

TensorFlow-free, so that the tf.data pipeline (`training.pipeline`) and the
NumPy one (`training.jax_lib`, for machines without TensorFlow) share them.
"""

import numpy as np

PATCH_SIZE = 41
DOWNSCALES = (1.0, 0.7, 0.5)
ROTATIONS = 4
FLIPS = 2
NUM_VARIANTS = len(DOWNSCALES) * ROTATIONS * FLIPS  # 24, the paper's augmentation


def variant_parts(variant):
    """variant in [0, 24) -> (downscale index, quarter turns, flipped)."""
    return variant // (ROTATIONS * FLIPS), (variant // FLIPS) % ROTATIONS, variant % FLIPS


def luminance_images(images):
    """`images` as a list of arrays, checked to be 2-D uint8 luminance; at least one."""
    images = [np.asarray(y) for y in images]
    if not images:
        raise ValueError("no training images")
    for y in images:
        if y.ndim != 2 or y.dtype != np.uint8:
            raise ValueError(f"expected 2-D uint8 luminance images, got {y.dtype} {y.shape}")
    return images
