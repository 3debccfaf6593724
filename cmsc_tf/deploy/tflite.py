"""TFLite conversion of the raw network (four variants) and a LiteRT runner.

The converted graph is the network alone, ``bicubic_y`` ``[1, H, W, 1]`` ->
``final``, with H and W dynamic (the input is resized before each new
shape); colour handling and bicubic upsampling stay in
:class:`cmsc_tf.deploy.upscaler.Upscaler` (or use the self-contained RGB
model of :mod:`cmsc_tf.deploy.tflite_rgb`). Variants:

* ``float32``: plain conversion.
* ``float16``: weights stored as float16 (half the file), computed in float32 on CPU.
* ``dynamic_int8``: int8 weights, activations quantised on the fly.
* ``int8``: full-integer: weights and activations int8, calibrated on
  representative patches, int8 input and output tensors.

Running uses ``ai_edge_litert.interpreter`` (the interpreter bundled with
TensorFlow, ``tf.lite.Interpreter``, is deprecated), and imports neither
TensorFlow nor Keras: only conversion needs them. The receptive radius
that tiling needs is written to a side file ``<model>.tflite.json`` and
embedded in the flatbuffer's metadata table (entry ``cmsc_metadata``).
"""

import json
import os
import pathlib

import numpy as np

from cmsc_tf.io import atomic
from cmsc_tf.numerics import degradation
from cmsc_tf.numerics.color import luminance

VARIANTS = ("float32", "float16", "dynamic_int8", "int8")
METADATA_NAME = "cmsc_metadata"  # the flatbuffer's metadata entry holding the JSON metadata


def metadata_path(tflite_path):
    """The side file holding a .tflite model's metadata: ``<model>.tflite.json``."""
    return pathlib.Path(os.fspath(tflite_path) + ".json")


def representative_patches(hr_images, scale=2, patch_size=48, count=64, seed=0):
    """Calibration data for the int8 variant: network inputs as training makes them.

    Each HR uint8 image gives its protocol luminance (``protocol.md`` step 2),
    cropped to a multiple of ``scale``, degraded as the protocol does
    (:func:`cmsc_tf.numerics.degradation.degrade`); ``count`` random ``patch_size`` squares are drawn
    round-robin over the images. Returns a list of float32 ``[p, p]`` arrays.
    """
    rng = np.random.default_rng(seed)
    inputs = []
    for image in hr_images:
        y = degradation.modcrop(luminance(np.asarray(image)), scale).astype(np.float64) / 255.0
        if min(y.shape) >= patch_size:
            inputs.append(degradation.degrade(y, scale))
    if not inputs:
        raise ValueError(f"no image is at least {patch_size} pixels on each side")
    patches = []
    for i in range(count):
        source = inputs[i % len(inputs)]
        top = rng.integers(0, source.shape[0] - patch_size + 1)
        left = rng.integers(0, source.shape[1] - patch_size + 1)
        patches.append(source[top : top + patch_size, left : left + patch_size].astype(np.float32))
    return patches


def convert(model, variant="float32", representative_patches=None):
    """The ``.tflite`` flatbuffer (bytes) of ``model``'s final output.

    Args:
      model: a Keras model taking ``[batch, H, W, 1]`` float32.
      variant: one of ``VARIANTS``.
      representative_patches: for ``int8`` only, an iterable of float32
        ``[h, w]`` or ``[h, w, 1]`` bicubic-luminance patches in [0, 1]
        (see :func:`representative_patches`).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown TFLite variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    import tensorflow as tf

    from cmsc_tf.models.model import final_output

    network = tf.function(
        # A dict, so the signature's output is named ``final`` as in the SavedModel's ``luminance``.
        lambda bicubic_y: {"final": final_output(model(bicubic_y, training=False))},
        input_signature=[tf.TensorSpec([1, None, None, 1], tf.float32, name="bicubic_y")],
    )
    converter = converter_of(model, network)
    if variant != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "int8":
        if representative_patches is None:
            raise ValueError("the int8 variant needs representative_patches for calibration")
        patches = [np.asarray(p, np.float32).reshape(1, p.shape[0], p.shape[1], 1) for p in representative_patches]
        if not patches:
            raise ValueError("representative_patches is empty")
        converter.representative_dataset = lambda: ([p] for p in patches)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


def converter_of(model, function):
    """A ``TFLiteConverter`` of the tf.function ``function``, which calls the Keras ``model``."""
    import tensorflow as tf

    # The converter freezes only variables it can find through a tf.Module
    # (Keras 3 models are not one); unfrozen variables would stay as
    # READ_VARIABLE ops that calibration and the interpreter cannot run.
    holder = tf.Module()
    holder.weights = [w.value for w in model.weights]
    holder.function = function
    return tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], holder)


def model_metadata(model, variant):
    """The metadata of ``model`` converted as ``variant``: the SavedModel's, less what rebuilds it in Keras."""
    from cmsc_tf.deploy import saved_model

    metadata = {**saved_model.model_metadata(model), "tflite_variant": variant}
    metadata.pop("keras_config")  # a .tflite model cannot be rebuilt in Keras
    return metadata


def save(model, path, variant="float32", representative_patches=None):
    """Converts and writes ``path`` and its metadata side file (each atomically); returns ``path``."""
    path = pathlib.Path(path)
    flatbuffer = convert(model, variant, representative_patches)
    metadata = model_metadata(model, variant)
    atomic.write_bytes(path, embed_metadata(flatbuffer, metadata))
    atomic.write_text(metadata_path(path), json.dumps(metadata, indent=1))
    return path


def embed_metadata(flatbuffer, metadata, name=METADATA_NAME):
    """``flatbuffer`` with ``metadata`` (JSON) added as the metadata entry ``name``."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(bytearray(flatbuffer), 0))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(metadata).encode(), np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = name
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if m.name not in (name, name.encode())] + [entry]
    builder = flatbuffers.Builder(len(flatbuffer) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def read_embedded_metadata(model, name=METADATA_NAME):
    """The JSON metadata embedded in a ``.tflite`` (path or bytes); ``{}`` when absent."""
    from ai_edge_litert import schema_py_generated as schema

    data = model if isinstance(model, (bytes, bytearray)) else pathlib.Path(model).read_bytes()
    root = schema.Model.GetRootAsModel(bytearray(data), 0)
    for i in range(root.MetadataLength()):
        entry = root.Metadata(i)
        if entry.Name().decode() == name:
            return json.loads(root.Buffers(entry.Buffer()).DataAsNumpy().tobytes().decode())
    return {}


def read_metadata(path):
    """A ``.tflite`` model's metadata: the side file, else the entry embedded in the flatbuffer (``{}`` when neither)."""
    side = metadata_path(path)
    if side.is_file():
        return json.loads(side.read_text())
    return read_embedded_metadata(path)


def available_cores():
    """The number of CPU cores this process may run on (its affinity mask, else ``os.cpu_count()``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class TFLiteNetwork:
    """Runs a converted network with LiteRT: ``[H, W, 1]`` float32 -> ``[H, W, 1]`` float32.

    Quantised (int8) inputs and outputs are converted with the tensors'
    own scale and zero point, so every variant is called the same way.
    ``num_threads``: LiteRT's (and its XNNPACK delegate's) thread count;
    ``None``: every core this process may run on (:func:`available_cores`).
    """

    def __init__(self, model, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter  # optional dependency

        source = {"model_content": model} if isinstance(model, (bytes, bytearray)) else {"model_path": os.fspath(model)}
        self.num_threads = available_cores() if num_threads is None else int(num_threads)
        self._interpreter = Interpreter(**source, num_threads=self.num_threads)
        self._input = self._interpreter.get_input_details()[0]
        self._output_index = self._interpreter.get_output_details()[0]["index"]
        self._shape = None

    def __call__(self, bicubic_y):
        bicubic_y = np.asarray(bicubic_y, np.float32)
        shape = (1, bicubic_y.shape[0], bicubic_y.shape[1], 1)
        if shape != self._shape:
            self._interpreter.resize_tensor_input(self._input["index"], shape, strict=True)
            self._interpreter.allocate_tensors()
            self._shape = shape
        self._interpreter.set_tensor(self._input["index"], self._quantize(bicubic_y.reshape(shape)))
        self._interpreter.invoke()
        output = self._interpreter.get_tensor(self._output_index)
        return self._dequantize(output).reshape(bicubic_y.shape[0], bicubic_y.shape[1], 1)

    def _quantize(self, values):
        dtype = self._input["dtype"]
        if dtype == np.float32:
            return values
        scale, zero_point = self._input["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.round(values / scale + zero_point), info.min, info.max).astype(dtype)

    def _dequantize(self, values):
        if values.dtype == np.float32:
            return values
        details = next(d for d in self._interpreter.get_output_details() if d["index"] == self._output_index)
        scale, zero_point = details["quantization"]
        return ((values.astype(np.float32) - zero_point) * scale).astype(np.float32)
