"""Geometric self-ensemble (x8): average a network over the dihedral group of the square.

Each of the 8 transforms ``T`` (4 rotations by 90 degrees, each with and
without a horizontal flip) is applied to the input, the network runs, the
inverse ``T^-1`` brings its output back, and the 8 results are averaged
(Lim et al. 2017, "EDSR"). Pure NumPy on ``[H, W, C]`` arrays.
"""

import numpy as np

# (number of 90-degree counter-clockwise rotations, flip first)
TRANSFORMS = tuple((rotations, flip) for flip in (False, True) for rotations in range(4))


def forward_transform(image, rotations, flip):
    """``T``: optional left-right flip, then ``rotations`` x 90 degrees counter-clockwise."""
    if flip:
        image = image[:, ::-1]
    return np.rot90(image, rotations, axes=(0, 1))


def inverse_transform(image, rotations, flip):
    """``T^-1``: undo the rotations, then the flip."""
    image = np.rot90(image, -rotations, axes=(0, 1))
    if flip:
        image = image[:, ::-1]
    return image


def apply_self_ensemble(fn, image):
    """Mean over the 8 transforms ``T`` of ``T^-1(fn(T(image)))``, in float64 then cast back.

    ``fn`` maps ``[h, w, C]`` to ``[h, w, C_out]``; rotated inputs have their
    height and width swapped, so ``fn`` must accept any size.
    """
    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"apply_self_ensemble: expected an [H, W, C] array, got shape {image.shape}")
    total = None
    dtype = None
    for rotations, flip in TRANSFORMS:
        # ascontiguousarray: rot90 returns a view with negative strides.
        result = np.asarray(fn(np.ascontiguousarray(forward_transform(image, rotations, flip))))
        result = inverse_transform(result, rotations, flip)
        dtype = result.dtype
        total = result.astype(np.float64) if total is None else total + result
    return (total / len(TRANSFORMS)).astype(dtype)
