"""A self-contained LiteRT model: uint8 RGB and a scale in, uint8 RGB out.

:mod:`cmsc_tf.deploy.tflite` converts the bare network (bicubic luminance
in, ``final`` out), so an app must redo MATLAB bicubic and YCbCr itself.
This module converts the whole of the SavedModel's ``serving_default``
instead: MATLAB ``rgb2ycbcr``, MATLAB bicubic by ``scale``, the network on
Y, the bicubic Cb/Cr kept, ``ycbcr2rgb``, clipping and rounding, all as
LiteRT builtin ops (no ``SELECT_TF_OPS``, so ``ai_edge_litert`` from pip
runs it). The signature is ``serving_default``:

* inputs ``images`` uint8 ``[1, H, W, 3]`` (H and W dynamic: call
  ``resize_tensor_input`` then ``allocate_tensors`` for each new size) and
  ``scale`` float32 ``[]`` in [1, 8];
* output ``images`` uint8 ``[1, ceil(H*scale), ceil(W*scale), 3]``, the
  SavedModel's output key.

Differences from the SavedModel, both forced by LiteRT having no float64
builtins (the SavedModel computes the bicubic geometry in float64, which
the converter refuses: ``tf.Mul``/``tf.RealDiv``/``tf.Floor``/``tf.Ceil``/
``tf.ScatterNd``/... on ``f64``): the tap positions and weights are computed
in float32 (pixel differences of a level at most, measured in the tests), and the
output size is ``ceil(H * scale)`` in float32, which for non-integer scales
may be one pixel off MATLAB's double (e.g. ``1000 * 1.1``); integer scales
are exact. The scale is not range-checked in the graph (LiteRT drops
asserts): keep it in [1, 8].

Metadata (format, receptive radius, scales, variant, cmsc_tf version) is
embedded in the flatbuffer's ``metadata`` table as the entry
``cmsc_metadata`` (UTF-8 JSON); :func:`cmsc_tf.deploy.tflite.read_embedded_metadata`
reads it.
"""

import numpy as np
import tensorflow as tf

from cmsc_tf.deploy.resampling import MAX_SCALE, MIN_SCALE, merge_ycbcr
from cmsc_tf.deploy import tflite
from cmsc_tf.io import atomic
from cmsc_tf.models.model import final_output
from cmsc_tf.numerics.color_tf import rgb2ycbcr_tf
from cmsc_tf.numerics.imresize_tf import cubic_tf, mirrored_matrix

RGB_VARIANTS = ("float32", "float16", "dynamic_int8")
OUTPUT_NAME = "images"  # the SavedModel's serving_default output key
_TAPS = 6  # MATLAB bicubic when enlarging: kernel width 4, ceil(4) + 2 taps


def weight_matrix_f32(in_length, out_length, scale):
    """MATLAB's bicubic ``[out, in]`` matrix for enlarging (scale >= 1), geometry in float32.

    The float32 twin of :func:`cmsc_tf.numerics.imresize_tf.weight_matrix_tf`
    restricted to scale >= 1 (no kernel widening), for LiteRT's builtins.
    """
    x = tf.cast(tf.range(1, out_length + 1), tf.float32)
    u = x[:, None] / scale + 0.5 * (1.0 - 1.0 / scale)
    left = tf.floor(u - 2.0)
    offsets = tf.range(_TAPS, dtype=tf.float32)[None, :]
    weights = cubic_tf(u - left - offsets)  # u - (left + k), computed near zero
    weights = weights / tf.reduce_sum(weights, axis=1, keepdims=True)
    taps = tf.cast(left, tf.int32) + tf.range(_TAPS)[None, :]
    return mirrored_matrix(taps, weights, in_length, out_length)


def imresize_up_f32(image, scale):
    """``[1, H, W, C]`` float32 enlarged by a float32 scalar ``scale`` >= 1 (MATLAB bicubic)."""
    shape = tf.shape(image)
    in_h, in_w = shape[1], shape[2]
    out_h = tf.cast(tf.math.ceil(tf.cast(in_h, tf.float32) * scale), tf.int32)
    out_w = tf.cast(tf.math.ceil(tf.cast(in_w, tf.float32) * scale), tf.int32)
    rows = weight_matrix_f32(in_h, out_h, scale)
    cols = weight_matrix_f32(in_w, out_w, scale)
    resized = tf.einsum("oh,bhwc->bowc", rows, image)
    return tf.einsum("pw,bowc->bopc", cols, resized)


def rgb_function(model):
    """The tf.function converted: (``images`` uint8 ``[1, H, W, 3]``, ``scale``) -> {``images``: uint8}."""

    def upscale(images, scale):
        ycbcr = rgb2ycbcr_tf(tf.cast(images, tf.float32) / 255.0)
        upsampled = imresize_up_f32(ycbcr, tf.cast(scale, tf.float32))
        y = final_output(model(upsampled[..., :1], training=False))
        return {OUTPUT_NAME: merge_ycbcr(y, upsampled[..., 1:])}

    return tf.function(
        upscale,
        input_signature=[
            tf.TensorSpec([1, None, None, 3], tf.uint8, name="images"),
            tf.TensorSpec([], tf.float32, name="scale"),
        ],
    )


def convert_rgb(model, variant="float16"):
    """The self-contained ``.tflite`` flatbuffer (bytes), builtins only, metadata embedded."""
    if variant not in RGB_VARIANTS:
        raise ValueError(f"unknown RGB TFLite variant {variant!r}; choose one of {', '.join(RGB_VARIANTS)}")
    converter = tflite.converter_of(model, rgb_function(model))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if variant != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return tflite.embed_metadata(converter.convert(), rgb_metadata(model, variant))


def rgb_metadata(model, variant):
    import cmsc_tf

    metadata = tflite.model_metadata(model, variant)
    metadata.update(
        {
            "tflite_kind": "rgb",
            "inputs": {"images": "uint8 [1, H, W, 3] RGB", "scale": "float32 []"},
            "outputs": {OUTPUT_NAME: "uint8 [1, ceil(H*scale), ceil(W*scale), 3] RGB"},
            "scales": [MIN_SCALE, MAX_SCALE],
            "cmsc_tf_version": getattr(cmsc_tf, "__version__", None),
        }
    )
    return metadata


def save_rgb(model, path, variant="float16"):
    """Converts and writes ``path`` atomically (metadata inside, no side file); returns ``path``."""
    import pathlib

    path = pathlib.Path(path)
    atomic.write_bytes(path, convert_rgb(model, variant))
    return path


class TFLiteRGB:
    """Runs a self-contained model with LiteRT: ``upscale(rgb uint8 [H, W, 3], scale)`` -> uint8 ``[h, w, 3]``.

    Uses the ``serving_default`` signature runner, which resizes the input
    tensors (and reallocates) whenever the image size changes.
    """

    def __init__(self, model, num_threads=None):
        import os

        from ai_edge_litert.interpreter import Interpreter

        source = {"model_content": bytes(model)} if isinstance(model, (bytes, bytearray)) else {"model_path": os.fspath(model)}
        self._interpreter = Interpreter(**source, num_threads=num_threads)
        self._runner = self._interpreter.get_signature_runner("serving_default")

    def upscale(self, rgb, scale):
        rgb = np.ascontiguousarray(rgb, np.uint8)
        if rgb.ndim != 3 or rgb.shape[-1] != 3:
            raise ValueError(f"expected an RGB image [H, W, 3], got shape {rgb.shape}")
        scale = float(scale)
        if not MIN_SCALE <= scale <= MAX_SCALE:
            raise ValueError(f"scale must be between {MIN_SCALE:g} and {MAX_SCALE:g}, got {scale!r}")
        return self._runner(images=rgb[None], scale=np.asarray(scale, np.float32))[OUTPUT_NAME][0]
