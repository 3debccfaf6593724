"""``Upscaler``: a super-resolved image out of a trained model, whatever its file format.

```python
from cmsc_tf.deploy.upscaler import Upscaler
upscaler = Upscaler("cmsc_full")                  # a preset name, or a path
big = upscaler.upscale("photo.png", 2.5)          # NumPy uint8 array
exact = Upscaler("cmsc_full", precision="float32")  # the float32 Keras/SavedModel network
```

Models: a SavedModel folder written by :func:`cmsc_tf.deploy.saved_model.export_saved_model`
(or its parent ``<name>/`` folder: the highest version is taken, as TF-Serving
does), a ``.keras`` file, a ``.tflite`` file (with its ``.tflite.json`` side
file for tiling), a Keras model object, or a preset name (``cmsc_compact``,
``cmsc_full``, ``vdsr``: :mod:`cmsc_tf.models.presets`); all loaded by
:func:`cmsc_tf.deploy.loader.load_network`.

The image steps around the network are those of the exported SavedModel graph
(:mod:`cmsc_tf.deploy.resampling`): MATLAB bicubic by ``scale``, YCbCr, network on Y,
bicubic Cb/Cr, recombination, rounding; here in NumPy
(:mod:`cmsc_tf.numerics.imresize_np`, :mod:`cmsc_tf.numerics.color`), so that
a LiteRT model (every preset's default) runs with NumPy, Pillow and
``ai_edge_litert`` alone: TensorFlow and Keras are imported only for a Keras
model, a ``.keras`` file or a SavedModel (``docs/deployment.md``, cold start).
Grayscale images go through the network directly (``protocol.md``: their
gray value is the luminance); an alpha channel is upscaled with bicubic.

Options:

* ``tile``: compute the output in tiles of this many output pixels (default
  ``"auto"``: :data:`cmsc_tf.deploy.tiling.DEFAULT_TILE` when the model's
  receptive radius is known, else one piece; ``None``: one piece), each from
  its own window of the input: the bicubic luminance and chroma of the tile
  grown by a halo of ``receptive_radius`` pixels (from exactly the input
  pixels the bicubic taps of that region read), the network on it, the core
  written as uint8 RGB into the output. The result is the untiled one to
  float precision for a float network (the dynamic-int8 one quantises each
  crop's activations on their own: within 45 dB of untiled), and peak memory is the uint8 input and output plus one
  tile's float planes and network activations (hundreds of bytes per pixel
  for CMSC), whatever the image (``docs/deployment.md``).
* ``max_output_pixels``: a tighter output limit than the pixel budget
  (:mod:`cmsc_tf.io.pixel_budget`), never a looser one.
* ``self_ensemble``: average over the 8 flips/rotations
  (:mod:`cmsc_tf.deploy.self_ensemble`), 8 times the compute.
* ``precision``: ``None`` (default): :func:`cmsc_tf.deploy.loader.default_precision`,
  ``"dynamic_int8"`` for the presets ``cmsc_compact`` and ``cmsc_full`` (their
  shipped dynamic-range int8 ``.tflite`` run with LiteRT/XNNPACK, about 3.5
  times the float32 speed on a CPU, Set5 within 0.02 dB), ``"float32"`` for
  anything else. ``"float32"``: the float32 network (a preset's SavedModel).
  ``"dynamic_int8"`` on a Keras model, ``.keras`` file or SavedModel from
  ``export_saved_model``: converted in memory when loaded.
  ``"bfloat16"`` (CPUs with AVX512_BF16 or AMX) or ``"float16"`` (GPUs): Keras mixed
  precision, variables kept in float32; needs a Keras model, so it applies to
  ``.keras`` files and to SavedModels from ``export_saved_model`` (rebuilt from
  their stored config and variables). ``.tflite`` models run as converted.
"""

import os

import numpy as np
import PIL.Image

from cmsc_tf.deploy import scales
from cmsc_tf.deploy.loader import default_precision, load_network
from cmsc_tf.deploy.self_ensemble import apply_self_ensemble
from cmsc_tf.deploy.tiling import DEFAULT_TILE, apply_tiled, check_tile, tile_windows
from cmsc_tf.io import images, pixel_budget
from cmsc_tf.numerics import color
from cmsc_tf.numerics.imresize_np import window_matrix_np


class Upscaler:
    """Super-resolves images with a trained network; see the module docstring."""

    def __init__(
        self,
        model,
        tile="auto",
        self_ensemble=False,
        precision=None,
        halo=None,
        max_output_pixels=pixel_budget.MAX_OUTPUT_PIXELS,
    ):
        precision = default_precision(model) if precision is None else precision
        self._network, radius = load_network(model, precision)
        # === Config ===
        self.self_ensemble = bool(self_ensemble)
        self.precision = precision
        self.halo = radius if halo is None else int(halo)
        if isinstance(tile, str) and tile == "auto":
            tile = None if self.halo is None else DEFAULT_TILE
        self.tile = None if tile is None else check_tile(tile)
        self.max_output_pixels = int(max_output_pixels)
        if not 0 < self.max_output_pixels <= pixel_budget.MAX_OUTPUT_PIXELS:
            raise ValueError(
                f"max_output_pixels must be in 1..{pixel_budget.MAX_OUTPUT_PIXELS} (the pixel budget), got {max_output_pixels}"
            )
        if self.tile is not None:
            if self.halo is None:
                raise ValueError("tiling needs the model's receptive radius: this model has none stored, pass halo=")

    def network_y(self, bicubic_y):
        """The network on a ``[H, W, 1]`` float32 bicubic luminance, tiled and ensembled as configured."""
        return apply_tiled(self._network_window, bicubic_y, self.tile, self.halo)

    def _network_window(self, bicubic_y):
        return apply_self_ensemble(self._network, bicubic_y) if self.self_ensemble else self._network(bicubic_y)

    def output_size(self, height, width, scale):
        """Output ``(height, width)`` for ``scale``; raises :class:`PixelBudgetError` (a ``ValueError``) when too large."""
        scale = scales.normalize_scale(scale)
        out_h, out_w = scales.output_size(height, width, scale)
        pixel_budget.check_output_size(out_w, out_h)
        if out_h * out_w > self.max_output_pixels:
            raise pixel_budget.PixelBudgetError(
                f"output: {out_w}x{out_h} pixels is over this Upscaler's limit ({self.max_output_pixels:,} pixels)"
            )
        return out_h, out_w

    def upscale(self, image, scale):
        """Super-resolves ``image`` by ``scale`` (1 to 8, non-integer allowed; output ``ceil(size * scale)``).

        ``image``: a uint8 (or uint16, or bool) NumPy array ``[H, W]``,
        ``[H, W, 1|2|3|4]``, a PIL image or a file path. Returns a PIL image
        for a PIL image, else a uint8 NumPy array with the input's channel
        layout. An image that cannot be used (a float or int64 array, a bad
        shape, an animation, a corrupt file) raises
        :class:`cmsc_tf.io.images.ImageError`, one that is too large a
        :class:`cmsc_tf.io.pixel_budget.PixelBudgetError` (both ``ValueError``).
        """
        # Sizes first (input and output budget), before a pixel is decoded.
        def check(width, height):
            self.output_size(height, width, scale)

        if isinstance(image, PIL.Image.Image):
            return PIL.Image.fromarray(self._upscale_array(images.from_pil(image, check), scale))
        if isinstance(image, (str, os.PathLike)):
            return self._upscale_array(images.read_image(image, check), scale)
        return self._upscale_array(_as_uint8_array(image, check), scale)

    def _upscale_array(self, array, scale):
        scale = scales.normalize_scale(scale)
        pixel_budget.check_input_size(array.shape[1], array.shape[0])
        out_h, out_w = self.output_size(array.shape[0], array.shape[1], scale)
        planes = array[..., None] if array.ndim == 2 else array
        # The only whole-image allocation: the uint8 result, filled tile by tile.
        output = np.empty((out_h, out_w, planes.shape[-1]), np.uint8)
        for crop, core, core_in_crop in tile_windows(out_h, out_w, self.tile, self.halo or 0):
            output[core] = self._upscale_tile(planes, scale, crop, core, core_in_crop)
        return output[..., 0] if array.ndim == 2 else output

    def _upscale_tile(self, planes, scale, crop, core, core_in_crop):
        """The uint8 output on ``core``; the network runs on ``crop`` (``core`` plus the halo)."""
        colours = 3 if planes.shape[-1] >= 3 else 1
        if colours == 3:
            ycbcr = bicubic_window(planes[..., :3], scale, crop, _unit_ycbcr)
            y = self._network_window(ycbcr[..., :1])[core_in_crop]
            # The graph's resampling.merge_ycbcr: network Y with the bicubic CbCr, back to RGB.
            result = color.unit_to_uint8(color.ycbcr2rgb(np.concatenate([y, ycbcr[core_in_crop][..., 1:]], -1)))
        else:
            y = bicubic_window(planes[..., :1], scale, crop, _unit)
            result = color.unit_to_uint8(self._network_window(y)[core_in_crop])
        if planes.shape[-1] > colours:  # alpha: plain bicubic, no halo needed
            alpha = color.unit_to_uint8(bicubic_window(planes[..., colours:], scale, core, _unit))
            result = np.concatenate([result, alpha], -1)
        return result


def _unit(uint8):
    return uint8.astype(np.float32) / 255.0


def _unit_ycbcr(rgb_uint8):
    # The graph's colour step (resampling.upsample_ycbcr), on one input window.
    return color.rgb2ycbcr(_unit(rgb_uint8)).astype(np.float32)


def bicubic_window(image, scale, window, prepare):
    """MATLAB bicubic by ``scale`` of ``prepare(image)``, on the output region ``window`` only.

    ``window`` is a ``(rows, cols)`` pair of slices of the output. Only the
    input pixels its bicubic taps read are cut out and passed through
    ``prepare`` (uint8 -> float32 planes), so the cost is that of the
    window, not of the image; the values are those of the whole image's
    resize (same float64 weights rounded to float32, rows first, as
    :func:`cmsc_tf.numerics.imresize_tf.imresize_tf`), up to float32
    summation order.
    """
    (in_h, in_w), (rows, cols) = image.shape[:2], window
    out_h, out_w = scales.output_size(in_h, in_w, scale)
    row0, row1, row_matrix = window_matrix_np(in_h, out_h, scale, rows.start, rows.stop)
    col0, col1, col_matrix = window_matrix_np(in_w, out_w, scale, cols.start, cols.stop)
    planes = prepare(image[row0:row1, col0:col1])
    resized = np.tensordot(row_matrix.astype(np.float32), planes, axes=(1, 0))
    return np.tensordot(resized, col_matrix.astype(np.float32), axes=(1, 1)).transpose(0, 2, 1)


def _as_uint8_array(image, check):
    """``image`` as a uint8 array, or :class:`images.ImageError` in one line; ``check(width, height)`` before any copy."""
    array = np.asarray(image)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (1, 2, 3, 4)):
        raise images.ImageError(f"image: expected an array [H, W] or [H, W, 1|2|3|4], got shape {array.shape}")
    if array.dtype not in (np.uint8, np.uint16, np.bool_):
        raise images.ImageError(f"image: expected a uint8, uint16 or bool array, got {array.dtype} "
                                "(scale floats in [0, 1] to uint8 first)")
    if min(array.shape[:2]) < 1:
        raise images.ImageError(f"image: image is empty, shape {array.shape}")
    # Both budgets on the shape, before any converted copy is made.
    pixel_budget.check_input_size(array.shape[1], array.shape[0])
    check(array.shape[1], array.shape[0])
    if array.dtype == np.uint16:
        return images.wide_to_uint8(array)
    if array.dtype == np.bool_:  # a bilevel image, as Pillow's mode "1" reads: white is 255
        return array.astype(np.uint8) * np.uint8(255)
    return array
