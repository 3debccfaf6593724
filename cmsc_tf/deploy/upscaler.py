"""``Upscaler``: a super-resolved image out of a trained model, whatever its file format.

```python
from cmsc_tf.deploy.upscaler import Upscaler
upscaler = Upscaler("savedmodels/vdsr/1", tile=256, self_ensemble=False)
big = upscaler.upscale("photo.png", 2.5)          # NumPy uint8 array
```

Models: a SavedModel folder written by :func:`cmsc_tf.deploy.saved_model.export_saved_model`
(or its parent ``<name>/`` folder: the highest version is taken, as TF-Serving
does), a ``.keras`` file, a ``.tflite`` file (with its ``.tflite.json`` side
file for tiling), or a Keras model object; all loaded by
:func:`cmsc_tf.deploy.loader.load_network`.

The image steps around the network are those of the exported SavedModel graph
(:mod:`cmsc_tf.deploy.resampling`): MATLAB bicubic by ``scale``, YCbCr, network on Y,
bicubic Cb/Cr, recombination, rounding. Grayscale images go through the
network directly (``protocol.md``: their gray value is the luminance); an
alpha channel is upscaled with bicubic.

Options:

* ``tile``: run the network on overlapping tiles of this many output pixels,
  with a halo of ``receptive_radius`` pixels, so that the result is the
  untiled one to float precision while the network's activations (hundreds
  of bytes per pixel for CMSC) never exceed one tile.
* ``self_ensemble``: average over the 8 flips/rotations
  (:mod:`cmsc_tf.deploy.self_ensemble`), 8 times the compute.
* ``precision``: ``"float32"``, ``"bfloat16"`` (CPUs with AVX512_BF16 or
  AMX) or ``"float16"`` (GPUs): Keras mixed precision, variables kept in
  float32. Needs a Keras model, so it applies to ``.keras`` files and to
  SavedModels from ``export_saved_model`` (rebuilt from their stored config
  and variables); ``.tflite`` models are converted with their precision.
"""

import os

import numpy as np
import PIL.Image

from cmsc_tf.deploy import resampling
from cmsc_tf.deploy.loader import load_network
from cmsc_tf.deploy.self_ensemble import apply_self_ensemble
from cmsc_tf.deploy.tiling import apply_tiled
from cmsc_tf.io import images

# 8192 x 8192: the output and its float planes alone take about 1 GB.
DEFAULT_MAX_OUTPUT_PIXELS = 8192 * 8192


class Upscaler:
    """Super-resolves images with a trained network; see the module docstring."""

    def __init__(
        self,
        model,
        tile=None,
        self_ensemble=False,
        precision="float32",
        halo=None,
        max_output_pixels=DEFAULT_MAX_OUTPUT_PIXELS,
    ):
        self._network, radius = load_network(model, precision)
        # === Config ===
        self.tile = None if tile is None else int(tile)
        self.self_ensemble = bool(self_ensemble)
        self.precision = precision
        self.halo = radius if halo is None else int(halo)
        self.max_output_pixels = int(max_output_pixels)
        if self.tile is not None:
            if self.tile < 1:
                raise ValueError(f"tile must be a positive number of pixels, got {tile}")
            if self.halo is None:
                raise ValueError("tiling needs the model's receptive radius: this model has none stored, pass halo=")

    def network_y(self, bicubic_y):
        """The network on a ``[H, W, 1]`` float32 bicubic luminance, tiled and ensembled as configured."""
        run = lambda y: apply_tiled(self._network, y, self.tile, self.halo)  # noqa: E731
        return apply_self_ensemble(run, bicubic_y) if self.self_ensemble else run(bicubic_y)

    def output_size(self, height, width, scale):
        """Output ``(height, width)`` for ``scale``; raises ``ValueError`` when absurdly large."""
        scale = resampling.normalize_scale(scale)
        out_h, out_w = resampling.output_size(height, width, scale)
        if max(out_h, out_w) > resampling.MAX_OUTPUT_LENGTH or out_h * out_w > self.max_output_pixels:
            raise ValueError(
                f"output would be {out_w}x{out_h} pixels (limits: {resampling.MAX_OUTPUT_LENGTH} per side, "
                f"{self.max_output_pixels} in all)"
            )
        return out_h, out_w

    def upscale(self, image, scale):
        """Super-resolves ``image`` by ``scale`` (1 to 8, non-integer allowed; output ``ceil(size * scale)``).

        ``image``: a uint8 (or uint16) NumPy array ``[H, W]``, ``[H, W, 1|2|3|4]``,
        a PIL image or a file path. Returns a PIL image for a PIL image, else
        a uint8 NumPy array with the input's channel layout.
        """
        if isinstance(image, PIL.Image.Image):
            return PIL.Image.fromarray(self._upscale_array(images.to_array(image), scale))
        if isinstance(image, (str, os.PathLike)):
            return self._upscale_array(images.read_image(image), scale)
        return self._upscale_array(_as_uint8_array(image), scale)

    def _upscale_array(self, array, scale):
        scale = resampling.normalize_scale(scale)
        self.output_size(array.shape[0], array.shape[1], scale)
        planes = array[..., None] if array.ndim == 2 else array
        colour, alpha = (planes[..., :1], planes[..., 1:]) if planes.shape[-1] <= 2 else (planes[..., :3], planes[..., 3:])
        if colour.shape[-1] == 3:
            y, cbcr = resampling.upsample_ycbcr(colour, scale)
            result = resampling.merge_ycbcr(self.network_y(y.numpy()), cbcr).numpy()
        else:
            y = resampling.upsample_plane(colour, scale).numpy()
            result = resampling.to_uint8(self.network_y(y)).numpy()
        if alpha.shape[-1]:
            result = np.concatenate([result, resampling.to_uint8(resampling.upsample_plane(alpha, scale)).numpy()], -1)
        return result[..., 0] if array.ndim == 2 else result


def _as_uint8_array(image):
    array = np.asarray(image)
    if array.dtype == np.uint16:
        array = images.wide_to_uint8(array)
    if array.dtype != np.uint8:
        raise TypeError(f"Upscaler.upscale: expected a uint8 or uint16 image, got {array.dtype}")
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (1, 2, 3, 4)):
        raise ValueError(f"Upscaler.upscale: expected [H, W] or [H, W, 1|2|3|4], got shape {array.shape}")
    if min(array.shape[:2]) < 1:
        raise ValueError(f"Upscaler.upscale: image is empty, shape {array.shape}")
    return array
