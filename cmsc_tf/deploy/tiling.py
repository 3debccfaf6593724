"""Overlapping-tile inference for fully convolutional networks.

A network whose output pixel depends on at most ``halo`` pixels on each side
(``model.receptive_radius``) gives, on a crop that extends ``halo`` pixels
beyond a tile on every side where the image continues, exactly the same
values inside the tile as on the whole image: at the image border the crop
stops where the image stops, so the network's zero padding sees the same
border. Peak memory is then that of one ``(tile + 2 halo)^2`` crop instead of
the whole image. Pure NumPy: ``fn`` may be a Keras model, a SavedModel
signature or a TFLite interpreter wrapped to take and return arrays.
"""

import numpy as np

# The default tile side, in output pixels, of Upscaler (tile="auto") and
# cmsc-upscale (--tile).
# Crops of (512 + 2 x halo)^2 keep the LiteRT int8 network's buffers to about
# 1 GB (compact CMSC) or 4 GB (full CMSC), and run faster than one untiled pass
# on a large image (docs/deployment.md, benchmarks/upscale_memory.py).
DEFAULT_TILE = 512
# The largest tile accepted (Upscaler(tile=), --tile, the SavedModel's
# export): 4 times the default's pixels, so 4 times its buffers; beyond it a
# "tile" is an untiled run in disguise (--tile 4000 reached 9.66 GB and an
# XNNPACK reshape failure).
MAX_TILE = 1024


def check_tile(tile):
    """``tile`` as an int in ``1..MAX_TILE``; ValueError naming the bound otherwise."""
    if isinstance(tile, bool) or int(tile) != tile or not 1 <= tile <= MAX_TILE:
        raise ValueError(f"tile must be a whole number of pixels from 1 to {MAX_TILE}, got {tile!r}")
    return int(tile)


def tile_spans(length, tile, halo):
    """``[(crop_start, crop_stop, core_start, core_stop)]`` covering ``0..length`` along one axis.

    The cores partition ``range(length)`` into pieces of at most ``tile``;
    each crop is its core grown by ``halo`` on both sides, clipped to the image.
    """
    if tile < 1:
        raise ValueError(f"tile must be a positive number of pixels, got {tile}")
    if halo < 0:
        raise ValueError(f"halo must be non-negative, got {halo}")
    spans = []
    for core_start in range(0, length, tile):
        core_stop = min(core_start + tile, length)
        spans.append((max(core_start - halo, 0), min(core_stop + halo, length), core_start, core_stop))
    return spans


def tile_windows(height, width, tile, halo):
    """Yields ``(crop, core, core_in_crop)``, each a ``(rows, cols)`` pair of slices, tile by tile.

    ``crop`` is the region a tile's network input covers, ``core`` the
    region of the image it is kept for, ``core_in_crop`` the same region in
    the crop's coordinates. ``tile=None`` is one tile covering the image.
    """
    tile = max(height, width) if tile is None else tile
    for row0, row1, core_row0, core_row1 in tile_spans(height, tile, halo):
        for col0, col1, core_col0, core_col1 in tile_spans(width, tile, halo):
            yield (
                (slice(row0, row1), slice(col0, col1)),
                (slice(core_row0, core_row1), slice(core_col0, core_col1)),
                (slice(core_row0 - row0, core_row1 - row0), slice(core_col0 - col0, core_col1 - col0)),
            )


def apply_tiled(fn, image, tile, halo):
    """``fn`` applied to ``image`` ``[H, W, C]`` tile by tile; returns what ``fn(image)`` would.

    Args:
      fn: maps a ``[h, w, C]`` array to a ``[h, w, C_out]`` array (same h, w).
      image: ``[H, W, C]`` array.
      tile: core tile side in pixels; ``None`` or a tile covering the image
        calls ``fn`` once on the whole image.
      halo: context pixels on each side, at least the network's receptive radius.
    """
    image = np.asarray(image)
    if image.ndim != 3:
        raise ValueError(f"apply_tiled: expected an [H, W, C] array, got shape {image.shape}")
    height, width = image.shape[:2]
    if tile is None or (tile >= height and tile >= width):
        return np.asarray(fn(image))
    output = None
    for crop, core, core_in_crop in tile_windows(height, width, tile, halo):
        result = np.asarray(fn(image[crop]))
        if output is None:
            output = np.empty((height, width, result.shape[-1]), result.dtype)
        output[core] = result[core_in_crop]
    return output
