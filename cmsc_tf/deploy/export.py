"""Exporting a trained model: `.keras` on any backend; SavedModel and float16 TFLite with TensorFlow.

Flag-free: ``cmsc-export`` (:mod:`cmsc_tf.deploy.export_cli`, ``python -m
training.export`` in a checkout) is the command line; ``training.lib.trainer``
exports at the end of a run.
"""

import pathlib

import keras

import cmsc_tf  # noqa: F401  (registers the layers that load_model reads)
from cmsc_tf.io import atomic
from cmsc_tf.models.dtype_policy import dtype_policy

# tflite_<variant>: the bare network (bicubic luminance -> final), for Upscaler / cmsc-upscale;
# tflite_rgb_<variant>: self-contained (uint8 RGB + scale -> uint8 RGB, bicubic and YCbCr inside).
EXPORT_FORMATS = ("keras", "saved_model", "tflite_float16", "tflite_float32", "tflite_dynamic_int8",
                  "tflite_rgb_float16", "tflite_rgb_float32", "tflite_rgb_dynamic_int8")
# What training writes when it ends, and training.export's default; tflite_dynamic_int8
# is what Upscaler / cmsc-upscale run by default for a preset (cmsc_tf.models.presets).
DEFAULT_FORMATS = ("keras", "saved_model", "tflite_float16", "tflite_dynamic_int8", "tflite_rgb_float16")
# Formats that go through TensorFlow graphs: written only on the TensorFlow backend.
TENSORFLOW_FORMATS = tuple(f for f in EXPORT_FORMATS if f != "keras")


def inference_copy(model):
    """The trained model rebuilt in float32, uncompiled: what users load for inference.

    Leaves the training optimizer and any mixed-precision policy out of the exported files.
    """
    with dtype_policy("float32"):
        # Synchronized BN only matters in training; the copy runs anywhere.
        copy = model.__class__.from_config({**model.get_config(), "sync_batch_norm": False})
    copy.set_weights(model.get_weights())
    return copy


def available_formats(formats=DEFAULT_FORMATS):
    """The formats of `formats` that this backend can write."""
    if keras.backend.backend() == "tensorflow":
        return tuple(formats)
    return tuple(f for f in formats if f not in TENSORFLOW_FORMATS)


def export_model(model, export_prefix, formats=DEFAULT_FORMATS):
    """Writes the trained model next to `export_prefix`; returns {format: path}.

    - `keras`: `<export_prefix>.keras`.
    - `saved_model`: `<export_prefix>/<version>/` (TF-Serving layout; RGB uint8 /
      encoded-image / luminance signatures); each export takes the next free
      version number, so TF-Serving picks the newest and nothing is overwritten.
    - `tflite_<variant>` (float16, float32, dynamic_int8): the bare network as
      `<export_prefix>_<variant>.tflite` and its metadata side file, for LiteRT
      through `Upscaler` / `cmsc-upscale --model`.
    - `tflite_rgb_<variant>`: the self-contained model (uint8 RGB and scale in,
      uint8 RGB out; metadata embedded) as `<export_prefix>_rgb_<variant>.tflite`.
      (The full-int8 network needs calibration images: `cmsc_tf.deploy.tflite.save`.)

    Every file is written atomically (temporary name, then rename).
    """
    unknown = set(formats) - set(EXPORT_FORMATS)
    if unknown:
        raise ValueError(f"unknown export formats {sorted(unknown)}; choose from {EXPORT_FORMATS}")
    needs_tensorflow = sorted(set(formats) - set(available_formats(formats)))
    if needs_tensorflow:
        raise ValueError(f"formats {needs_tensorflow} need the TensorFlow backend "
                         f"(this is {keras.backend.backend()}): KERAS_BACKEND=tensorflow")
    export_prefix = pathlib.Path(export_prefix)
    export_prefix.parent.mkdir(parents=True, exist_ok=True)
    model = inference_copy(model)
    written = {}
    if "keras" in formats:
        written["keras"] = export_prefix.with_suffix(".keras")
        with atomic.atomic_path(written["keras"]) as temporary:
            model.save(temporary)
    if "saved_model" in formats:
        from cmsc_tf.deploy import saved_model

        versions = [int(p.name) for p in export_prefix.glob("*") if p.name.isdigit()]
        written["saved_model"] = pathlib.Path(saved_model.export_saved_model(
            model, export_prefix.parent, export_prefix.name, version=max(versions, default=0) + 1))
    for name in formats:
        if name.startswith("tflite_rgb_"):
            from cmsc_tf.deploy import tflite_rgb

            variant = name[len("tflite_rgb_"):]
            written[name] = tflite_rgb.save_rgb(
                model, export_prefix.parent / f"{export_prefix.name}_rgb_{variant}.tflite", variant)
        elif name.startswith("tflite_"):
            from cmsc_tf.deploy import tflite

            variant = name[len("tflite_"):]
            written[name] = tflite.save(model, export_prefix.parent / f"{export_prefix.name}_{variant}.tflite", variant)
    return written


def export_keras_file(keras_path, export_prefix, formats):
    """Exports a saved `.keras` model, or a preset by name, to other formats; returns {format: path}."""
    from cmsc_tf.deploy import loader
    from cmsc_tf.models import presets

    if presets.is_preset(keras_path):
        return export_model(loader.keras_model(keras_path), export_prefix, formats)
    keras_path = pathlib.Path(keras_path)
    if not keras_path.is_file():
        raise FileNotFoundError(f"{keras_path}: no such .keras file (nor a preset: {', '.join(presets.PRESETS)})")
    model = keras.saving.load_model(keras_path, compile=False, safe_mode=True)
    return export_model(model, export_prefix, formats)
