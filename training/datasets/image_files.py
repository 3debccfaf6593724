"""Reading HR images from disk as uint8 arrays, with the grayscale fact kept.

Protocol.md's luminance rule differs for grayscale and RGB images (a gray
value is its own luminance; RGB goes through rgb2ycbcr), so a reader must not
silently turn one into the other. Every image comes back as [H, W, 3] uint8
(grayscale replicated, so that one TFDS feature holds both kinds) together with
a flag that says whether it was grayscale.
"""

import pathlib

import numpy as np
from cmsc_tf import image_io

IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")


def list_images(folder):
    """Sorted image files of `folder` (not recursive); clear error when none."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FileNotFoundError(
            f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return files


def as_rgb_uint8(array):
    """[H, W] / [H, W, 1|2|3|4] uint8 -> ([H, W, 3] uint8, grayscale: bool).

    Alpha is dropped (protocol.md); a single channel is replicated.
    """
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got dtype {array.dtype}")
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(f"expected an image [H, W] or [H, W, 1|2|3|4], got shape {array.shape}")
    if array.shape[-1] <= 2:  # gray, or gray + alpha
        return np.repeat(array[..., :1], 3, axis=-1), True
    return np.ascontiguousarray(array[..., :3]), False


def read_image(path):
    """Reads one image file -> ([H, W, 3] uint8, grayscale: bool).

    Through the project's one reader (`cmsc_tf.image_io.read_image`: every
    Pillow mode, 16-bit scaled to 8 bits, a `ValueError` naming the file for
    corrupt or unsupported files).
    """
    return as_rgb_uint8(image_io.read_image(path))
