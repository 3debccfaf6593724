"""SavedModel export for TF-Serving: ``<base>/<name>/<version>/``, written atomically.

Signatures (names are the serving contract; ``docs/serving.md`` shows them):

* ``serving_default``: ``images`` uint8 ``[batch, H, W, 3]`` RGB (any H, W)
  and ``scale`` float32 in [1, 8], a scalar or one (equal) value per image
  (TF-Serving's REST row format stacks each row's scale) -> ``images`` uint8
  ``[batch, ceil(H*scale), ceil(W*scale), 3]``. MATLAB bicubic, YCbCr split,
  network on Y, bicubic Cb/Cr, recombination and rounding all run in the graph.
* ``upscale_encoded``: ``image_bytes`` string ``[batch]`` (PNG/JPEG/BMP
  bytes; REST clients send ``{"b64": ...}``) and ``scale``, a scalar or one
  per image -> ``png_bytes`` string ``[batch]``. Each image is decoded to
  RGB, upscaled as above by its scale and encoded to PNG, so the images of a
  batch may differ in size and scale. TF-Serving's
  REST API base64-encodes outputs whose name ends in ``_bytes``.
* ``luminance``: the raw network, ``bicubic_y`` float32 ``[batch, H, W, 1]``
  (bicubic-upsampled luminance in [0, 1]) -> ``final`` float32, same shape.
* All three refuse, before any work, requests over the pixel budget
  (``cmsc_tf/io/pixel_budget.py``, enforced by ``serving_limits.py``; for
  ``luminance`` the output is the input), with an ``InvalidArgumentError``
  naming the limit and the image.
* All three bound memory, not only pixels: images are processed one at a
  time, and the network (with the YCbCr merge) runs tile by tile
  (``tiling_tf.py``: ``tile`` output pixels a side, default
  ``tiling.DEFAULT_TILE``, grown by the receptive radius, the same exact
  tiling as ``Upscaler``), so a request at the budget's limit needs the
  bicubic YCbCr planes and the uint8 result of one image plus one tile's
  activations (docs/serving.md, ``benchmarks/serving_memory.py``).

Metadata for tiling (the receptive radius) and for rebuilding the Keras model
(its class config, used for reduced precision) is kept in the SavedModel as
the asset ``assets/cmsc_metadata.json``; the model's variables are tracked
in ``model_weights`` in ``model.weights`` order.
"""

import json
import os
import pathlib
import shutil
import tempfile

import keras
import tensorflow as tf

from cmsc_tf.deploy import resampling, serving_limits, tiling_tf
from cmsc_tf.deploy.tiling import DEFAULT_TILE, check_tile
from cmsc_tf.models.model import final_output

METADATA_FILE = "cmsc_metadata.json"
METADATA_FORMAT = 1


def model_metadata(model):
    """JSON-able facts an Upscaler needs about a model it cannot rebuild from code alone."""
    radius = getattr(model, "receptive_radius", None)
    return {
        "format": METADATA_FORMAT,
        "receptive_radius": None if radius is None else int(radius),
        "keras_class": keras.saving.get_registered_name(type(model)),
        "keras_config": model.get_config() if hasattr(model, "receptive_radius") else None,
    }


class _ServingModule(tf.Module):
    """Holds the model's variables and the three signature functions.

    The Keras model itself is only captured by the functions' closures, not
    tracked as an attribute: tracking both it and its tf.Variables would
    store every weight twice in the checkpoint.
    """

    def __init__(self, model, metadata_path, tile):
        super().__init__(name="cmsc_serving")
        # Raw tf.Variables in model.weights order: restoring them into a
        # freshly built Keras model needs only this list (see loader.py).
        self.model_weights = [w.value for w in model.weights]
        self.metadata = tf.saved_model.Asset(metadata_path)
        halo = model.receptive_radius

        def network(bicubic_y):
            return final_output(model(bicubic_y, training=False))

        def network_tiled(y):
            # One [H, W, 1] plane; memory of one (tile + 2 halo)^2 crop (tiling_tf).
            return tiling_tf.apply_tiled_tf(lambda crop: network(crop[None])[0], y, tile, halo, tf.float32, 1)

        def upscale_one(image, scale):
            # [H, W, 3] uint8 -> uint8; only the bicubic YCbCr and the uint8 result are whole-image tensors.
            def finish(ycbcr):
                return resampling.merge_ycbcr(network(ycbcr[None, ..., :1])[0], ycbcr[..., 1:])

            ycbcr = resampling.upsample_ycbcr_planes(image, scale)
            return tiling_tf.apply_tiled_tf(finish, ycbcr, tile, halo, tf.uint8, 3)

        def upscale_images(images, scale):
            scales = serving_limits.per_image_scales(resampling.normalize_scale_tf(scale), tf.shape(images)[0])
            scale = serving_limits.one_scale(scales)
            # The budget is checked before anything of the output's size exists.
            with tf.control_dependencies(serving_limits.batch_checks(images, scale)):
                images = tf.identity(images)
            return {"images": tiling_tf.map_images(lambda image: upscale_one(image, scale), images, tf.uint8, 3)}

        def upscale_encoded(image_bytes, scale):
            scales = serving_limits.per_image_scales(resampling.normalize_scale_tf(scale), tf.size(image_bytes))

            def one(encoded, scale):
                image = tf.io.decode_image(encoded, channels=3, dtype=tf.uint8, expand_animations=False)
                return tf.io.encode_png(upscale_one(image, scale))

            # Headers first: a refused image is never decoded.
            with tf.control_dependencies(serving_limits.encoded_checks(image_bytes, scales)):
                image_bytes = tf.identity(image_bytes)
            return {"png_bytes": serving_limits.map_naming_failures(one, image_bytes, scales)}

        def network_y(bicubic_y):
            # The same budget as the images (output = input here), then the same tiling.
            unit_scale = tf.constant(1.0, tf.float64)
            with tf.control_dependencies(serving_limits.batch_checks(bicubic_y, unit_scale)):
                bicubic_y = tf.identity(bicubic_y)
            return {"final": tiling_tf.map_images(network_tiled, bicubic_y, tf.float32, 1)}

        spec_images = tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")
        spec_bytes = tf.TensorSpec([None], tf.string, name="image_bytes")
        # Any rank: a scalar (columnar "inputs" requests) or [batch] (row "instances" requests);
        # per_image_scales refuses other shapes with a message.
        spec_scale = tf.TensorSpec(None, tf.float32, name="scale")
        spec_y = tf.TensorSpec([None, None, None, 1], tf.float32, name="bicubic_y")
        self.serving_default = tf.function(upscale_images, input_signature=[spec_images, spec_scale])
        self.upscale_encoded = tf.function(upscale_encoded, input_signature=[spec_bytes, spec_scale])
        self.luminance = tf.function(network_y, input_signature=[spec_y])


def export_saved_model(model, base_dir, name, version=1, overwrite=False, tile=DEFAULT_TILE):
    """Writes ``model`` as ``<base_dir>/<name>/<version>`` (TF-Serving's layout); returns that path.

    The SavedModel is written to a temporary sibling folder and renamed into
    place, so TF-Serving (which polls ``<name>/``) never sees a half-written
    version. An existing version is refused unless ``overwrite``.
    """
    version = int(version)
    if getattr(model, "receptive_radius", None) is None:
        raise ValueError("export_saved_model: the model has no receptive_radius; the serving graph tiles by it")
    tile = check_tile(tile)
    if version < 1:
        raise ValueError(f"version must be a positive integer, got {version}")
    model_dir = pathlib.Path(base_dir) / name
    target = model_dir / str(version)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} already exists (pass overwrite=True to replace it)")
    model_dir.mkdir(parents=True, exist_ok=True)
    # A leading dot: TF-Serving only loads folders whose name is a number.
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{version}.tmp-", dir=model_dir))
    try:
        with tempfile.TemporaryDirectory() as scratch:
            metadata_path = os.path.join(scratch, METADATA_FILE)
            with open(metadata_path, "w") as f:
                json.dump(model_metadata(model), f, indent=1)
            module = _ServingModule(model, metadata_path, tile)
            export_dir = staging / "saved_model"
            tf.saved_model.save(
                module,
                str(export_dir),
                signatures={
                    "serving_default": module.serving_default,
                    "upscale_encoded": module.upscale_encoded,
                    "luminance": module.luminance,
                },
            )
        if target.exists():
            shutil.rmtree(target)
        os.replace(export_dir, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def resolve_saved_model_dir(path):
    """``path`` itself if it holds a SavedModel, else its highest numbered version subfolder.

    So both ``savedmodels/<name>/<version>`` and ``savedmodels/<name>`` (as
    TF-Serving's base path) name a model.
    """
    path = pathlib.Path(path)
    if (path / "saved_model.pb").is_file():
        return path
    versions = sorted((int(p.name), p) for p in path.iterdir() if p.name.isdigit() and p.is_dir())
    if versions and (versions[-1][1] / "saved_model.pb").is_file():
        return versions[-1][1]
    raise ValueError(f"{path}: not a SavedModel folder (no saved_model.pb, no numbered version inside)")


def read_metadata(saved_model_dir):
    """The metadata dict stored by :func:`export_saved_model` (``{}`` for foreign SavedModels)."""
    path = pathlib.Path(saved_model_dir) / "assets" / METADATA_FILE
    if not path.is_file():
        return {}
    with open(path) as f:
        return json.load(f)
