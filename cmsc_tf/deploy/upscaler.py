"""``Upscaler``: a super-resolved image out of a trained model, whatever its file format.

```python
from cmsc_tf.deploy.upscaler import Upscaler
upscaler = Upscaler("savedmodels/vdsr/1", tile=256, self_ensemble=False)
big = upscaler.upscale("photo.png", 2.5)          # NumPy uint8 array
```

Models: a SavedModel folder written by :func:`cmsc_tf.deploy.saved_model.export_saved_model`
(or its parent ``<name>/`` folder: the highest version is taken, as TF-Serving
does), a ``.keras`` file, a ``.tflite`` file (with its ``.tflite.json`` side
file for tiling), or a Keras model object.

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

import contextlib
import os
import pathlib

import keras
import numpy as np
import PIL.Image
import tensorflow as tf

from cmsc_tf.deploy import resampling, saved_model, tflite
from cmsc_tf.io import images
from cmsc_tf.deploy.self_ensemble import apply_self_ensemble
from cmsc_tf.deploy.tiling import apply_tiled

PRECISIONS = {"float32": None, "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
# 8192 x 8192: the output and its float planes alone take about 1 GB.
DEFAULT_MAX_OUTPUT_PIXELS = 8192 * 8192


@contextlib.contextmanager
def _dtype_policy(name):
    """Builds layers under Keras dtype policy ``name`` and restores the previous one."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _rebuild(model_class, config, weights, policy):
    with _dtype_policy(policy):
        clone = model_class.from_config(config)
    clone.set_weights(weights)
    return clone


def _keras_network(model, precision):
    """A NumPy ``[H, W, 1] -> [H, W, 1]`` function running ``model`` at ``precision``."""
    policy = PRECISIONS[precision]
    if policy is not None:
        model = _rebuild(type(model), model.get_config(), model.get_weights(), policy)
    forward = tf.function(
        lambda y: tf.cast(saved_model.final_output(model, y), tf.float32),
        input_signature=[tf.TensorSpec([1, None, None, 1], tf.float32)],
    )
    return lambda y: forward(tf.constant(y[None], tf.float32))[0].numpy()


def _saved_model_network(path, precision):
    path = saved_model.resolve_saved_model_dir(path)
    metadata = saved_model.read_metadata(path)
    loaded = tf.saved_model.load(str(path))
    radius = metadata.get("receptive_radius")
    if precision == "float32":
        if "luminance" not in loaded.signatures:
            raise ValueError(f"{path}: SavedModel has no 'luminance' signature (not written by cmsc_tf.deploy.saved_model)")
        signature = loaded.signatures["luminance"]
        return (lambda y: signature(bicubic_y=tf.constant(y[None], tf.float32))["final"][0].numpy()), radius
    if not metadata.get("keras_config"):
        raise ValueError(f"{path}: precision {precision!r} needs a SavedModel written by cmsc_tf.deploy.saved_model")
    model_class = keras.saving.get_registered_object(metadata["keras_class"])
    model = _rebuild(model_class, metadata["keras_config"], [v.numpy() for v in loaded.model_weights], None)
    return _keras_network(model, precision), radius


def load_network(model, precision="float32"):
    """(NumPy network function on ``[H, W, 1]`` bicubic luminance, receptive radius or None)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if isinstance(model, keras.Model):
        return _keras_network(model, precision), getattr(model, "receptive_radius", None)
    path = pathlib.Path(os.fspath(model))
    if not path.exists():
        raise FileNotFoundError(f"model not found: {path}")
    if path.is_dir():
        return _saved_model_network(path, precision)
    if path.suffix == ".keras":
        loaded = keras.saving.load_model(path, compile=False)
        return _keras_network(loaded, precision), getattr(loaded, "receptive_radius", None)
    if path.suffix == ".tflite":
        if precision != "float32":
            raise ValueError(f"{path}: a .tflite model runs at the precision it was converted with; use precision='float32'")
        return tflite.TFLiteNetwork(path), tflite.read_metadata(path).get("receptive_radius")
    raise ValueError(f"{path}: unknown model format (expected a SavedModel folder, .keras or .tflite)")


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
