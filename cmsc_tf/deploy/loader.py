"""The one model loader: a model on disk (or in memory) -> a function that runs it.

Accepted models:

* a SavedModel folder, or its base folder ``<name>/`` holding numbered
  versions (the highest is taken, as TF-Serving does): the ``luminance``
  signature of :func:`cmsc_tf.deploy.saved_model.export_saved_model`, or of
  any SavedModel, else ``serving_default``, taking one float32 ``[B, H, W, 1]``
  tensor;
* a ``.keras`` file (loaded with ``safe_mode``; importing ``cmsc_tf``
  registers its layers);
* a ``.tflite`` file, run with LiteRT (:class:`cmsc_tf.deploy.tflite.TFLiteNetwork`;
  its ``.tflite.json`` side file holds the receptive radius);
* a Keras model object;
* a preset name, ``cmsc_compact``, ``cmsc_full`` or ``vdsr``: the shipped
  SavedModel, from the checkout's ``savedmodels/`` or the installed package
  (:mod:`cmsc_tf.models.presets`). Names are resolved here, once.

Two views of a loaded model:

* :func:`load_network`: ``[H, W, 1] -> [H, W, 1]`` float32 on the bicubic
  luminance, raw, and the model's receptive radius; for
  :class:`cmsc_tf.deploy.upscaler.Upscaler`, at a chosen precision
  (:data:`PRECISIONS`; :func:`default_precision` is the one ``Upscaler`` and
  ``cmsc-upscale`` pick when none is given: ``dynamic_int8`` for a preset that
  ships that file, the shipped ``<preset>_dynamic_int8.tflite``, else ``float32``).
* :func:`load_predictor`: the evaluation protocol's predictor ``x -> sr``
  on float ``[H, W]`` in [0, 1] (:mod:`cmsc_tf.eval.protocol`), the final
  output clipped to [0, 1] (a displayed image cannot leave that range; the
  ``bicubic`` baseline is not clipped, as the protocol scores it raw).

:func:`default_model_path` / :func:`available_model_path` name the model the
command line and the notebooks use when none is given; :func:`model_path`
resolves a name or path without loading anything (a missing one is refused
naming the presets), :func:`needs_tensorflow` says whether loading it
imports TensorFlow and Keras (all but a ``.tflite``), :func:`keras_model`
gives the Keras model of a preset, ``.keras`` file or exported SavedModel.
"""

import os
import pathlib
import sys
import zipfile
import zlib

import numpy as np

# NumPy and LiteRT only at import: a .tflite model (every preset's default)
# loads and runs without TensorFlow or Keras, whose import costs seconds
# (docs/deployment.md, cold start). They are imported where a Keras model,
# a .keras file or a SavedModel needs them.
from cmsc_tf.deploy import tflite
from cmsc_tf.models import presets

# The default model, a preset name (docs/deployment.md): the compact CMSC
# trained on the 291 images (docs/results.md).
DEFAULT_PRESET = presets.DEFAULT_PRESET
# What the notebooks use if DEFAULT_PRESET is absent (a trimmed checkout): the public VDSR.
FALLBACK_PRESET = presets.FALLBACK_PRESET
# The same two models as paths relative to the repository root.
DEFAULT_MODEL = f"{presets.CHECKOUT_DIR}/{presets.PRESETS[DEFAULT_PRESET]['saved_model']}"
FALLBACK_MODEL = f"{presets.CHECKOUT_DIR}/{presets.PRESETS[FALLBACK_PRESET]['saved_model']}"
# Keras dtype policy of each inference precision (None: as built, float32).
# "dynamic_int8" is not Keras: the network converted to LiteRT with int8 weights
# and activations quantised on the fly (cmsc_tf.deploy.tflite), run with XNNPACK.
PRECISIONS = {"float32": None, "bfloat16": "mixed_bfloat16", "float16": "mixed_float16", "dynamic_int8": None}
# The fast CPU path: a preset's file of this kind is what Upscaler / cmsc-upscale run by default.
FAST_PRECISION = "dynamic_int8"
_FAST_KIND = f"tflite_{FAST_PRECISION}"
# SavedModel signatures that run the raw network, in order of preference.
_SIGNATURES = ("luminance", "serving_default")


def default_precision(model):
    """The precision ``Upscaler`` and ``cmsc-upscale`` run ``model`` at when none is given.

    ``dynamic_int8`` for a preset that ships a dynamic-int8 ``.tflite``
    (``cmsc_compact``, ``cmsc_full``: about 3 to 3.5 times the float32 speed on a
    CPU, Set5 within 0.02 dB; docs/deployment.md); ``float32`` for anything
    else (a path or a Keras model keeps its own precision; a ``.tflite`` runs
    as it was converted).
    """
    if presets.is_preset(model) and _FAST_KIND in presets.PRESETS[model]:
        return FAST_PRECISION
    return "float32"


def default_model_path():
    """The DEFAULT_PRESET SavedModel: in this checkout, else in the installed package (it may be absent)."""
    try:
        return presets.preset_path(DEFAULT_PRESET)
    except FileNotFoundError:
        return presets.search_dirs()[0] / presets.PRESETS[DEFAULT_PRESET]["saved_model"]


def available_model_path(root=None):
    """The DEFAULT_PRESET model if present, else FALLBACK_PRESET.

    ``root``: look under ``root/savedmodels/`` instead of the presets' folders
    (:func:`cmsc_tf.models.presets.search_dirs`). The notebooks' choice of
    model. The command line does not fall back: it names a missing default
    model rather than silently running another one.
    """
    if root is not None:
        root = pathlib.Path(root)
        for relative in (DEFAULT_MODEL, FALLBACK_MODEL):
            if (root / relative).is_dir():
                return root / relative
        raise FileNotFoundError(f"neither {DEFAULT_MODEL} nor {FALLBACK_MODEL} found under {root}")
    for name in (DEFAULT_PRESET, FALLBACK_PRESET):
        try:
            return presets.preset_path(name)
        except FileNotFoundError:
            pass
    raise FileNotFoundError(f"neither preset {DEFAULT_PRESET} nor {FALLBACK_PRESET} found in "
                            + " or ".join(map(str, presets.search_dirs())))


# ----------------------------------------------------------------------------
# Networks: [H, W, 1] float32 -> [H, W, 1] float32
# ----------------------------------------------------------------------------


def _rebuild(model_class, config, weights, policy):
    from cmsc_tf.models.dtype_policy import dtype_policy  # (Keras: not on the default LiteRT path)

    with dtype_policy(policy):
        clone = model_class.from_config(config)
    clone.set_weights(weights)
    return clone


def _keras_network(model, precision):
    """A NumPy ``[H, W, 1] -> [H, W, 1]`` function running ``model`` at ``precision``."""
    import tensorflow as tf

    from cmsc_tf.models.model import final_output

    policy = PRECISIONS[precision]
    if policy is not None:
        model = _rebuild(type(model), model.get_config(), model.get_weights(), policy)
    # One trace for all image sizes.
    forward = tf.function(
        lambda y: tf.cast(final_output(model(y, training=False)), tf.float32),
        input_signature=[tf.TensorSpec([1, None, None, 1], tf.float32)],
    )
    return lambda y: forward(tf.constant(y[None], tf.float32))[0].numpy()


def _network_signature(loaded, path):
    """(signature, its input name) of the raw network in a loaded SavedModel."""
    name = next((n for n in _SIGNATURES if n in loaded.signatures), None)
    if name is None:
        raise ValueError(
            f"{path}: the SavedModel has signatures {sorted(loaded.signatures)}; expected one of {list(_SIGNATURES)}."
        )
    signature = loaded.signatures[name]
    _, inputs = signature.structured_input_signature
    if len(inputs) != 1:
        raise ValueError(f"{path}: signature {name!r} takes {sorted(inputs)}; expected one [B, H, W, 1] tensor.")
    (input_name,) = inputs
    return signature, input_name


def _fast_network(model):
    """A Keras model converted in memory to the dynamic-int8 LiteRT network (seconds for CMSC)."""
    flatbuffer = tflite.convert(model, FAST_PRECISION)
    return tflite.TFLiteNetwork(flatbuffer), getattr(model, "receptive_radius", None)


def _saved_model_network(path, precision):
    import tensorflow as tf

    from cmsc_tf.deploy import saved_model
    from cmsc_tf.models.model import final_output

    path = saved_model.resolve_saved_model_dir(path)
    metadata = saved_model.read_metadata(path)
    loaded = tf.saved_model.load(str(path))
    radius = metadata.get("receptive_radius")
    if precision == "float32":
        signature, input_name = _network_signature(loaded, path)

        def network(y):
            return final_output(signature(**{input_name: tf.constant(y[None], tf.float32)}))[0].numpy()

        # Keep the loaded object alive as long as the network.
        network.saved_model = loaded
        return network, radius
    model = _keras_from_saved_model(path, loaded, metadata, f"precision {precision!r}")
    if precision == FAST_PRECISION:
        return _fast_network(model)[0], radius
    return _keras_network(model, precision), radius


def _keras_from_saved_model(path, loaded, metadata, purpose):
    """The Keras model of a SavedModel from ``export_saved_model``: rebuilt from its stored config and variables."""
    import keras

    if not metadata.get("keras_config"):
        raise ValueError(f"{path}: {purpose} needs a SavedModel written by cmsc_tf.deploy.saved_model")
    model_class = keras.saving.get_registered_object(metadata["keras_class"])
    return _rebuild(model_class, metadata["keras_config"], [v.numpy() for v in loaded.model_weights], "float32")


def keras_model(model):
    """The Keras model of a preset, a ``.keras`` file or a SavedModel from ``export_saved_model`` (float32).

    A preset's ``.keras`` file (what ``CMSC.from_preset`` returns), a
    ``.keras`` file, or a SavedModel rebuilt from its stored config and
    variables.
    """
    if presets.is_preset(model) and "keras" in presets.PRESETS[model]:
        model = presets.preset_path(model, "keras")
    path = model_path(model)
    if path.suffix == ".keras":
        return _load_keras_file(path)
    if not path.is_dir():
        raise ValueError(f"{path}: no Keras model in it (expected a preset, a .keras file or a SavedModel folder)")
    import tensorflow as tf

    from cmsc_tf.deploy import saved_model

    path = saved_model.resolve_saved_model_dir(path)
    return _keras_from_saved_model(path, tf.saved_model.load(str(path)), saved_model.read_metadata(path),
                                   "a Keras model")


def _load_keras_file(path):
    """A ``.keras`` file -> Keras model; a damaged file raises ValueError naming it.

    Keras reports any file that is not a zip archive (truncated, random
    bytes) as "File not found", and damage inside the archive as a raw
    zipfile/h5py error.
    """
    open(path, "rb").close()  # unreadable: PermissionError, which is_zipfile would hide
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a valid .keras file (not a zip archive: truncated or corrupt)")
    import keras

    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:  # OSError: h5py's damaged weights
        raise ValueError(f"{path}: not a valid .keras file ({error})") from None
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        # Keras names neither the file nor the part at fault: a damaged config.json
        # (a missing key, a value of the wrong type), or safe_mode refusing code.
        first_line = str(error).splitlines()[0] if str(error) else ""
        raise ValueError(f"{path}: not a valid .keras file (its config.json is damaged or unsafe: "
                         f"{type(error).__name__}: {first_line})") from None


def _is_keras_model(model):
    # A Keras model exists only once Keras is imported: no need to import it to ask.
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(model, keras.Model)


def model_path(model, precision="float32"):
    """The file or folder :func:`load_network` reads for ``model`` (a preset name or a path) at ``precision``.

    A preset runs its dynamic-int8 ``.tflite`` at that precision, else its
    SavedModel. A missing path raises FileNotFoundError naming the presets
    (a mistyped preset name is the likely cause); nothing heavy is imported.
    """
    if precision == FAST_PRECISION and presets.is_preset(model) and _FAST_KIND in presets.PRESETS[model]:
        model = presets.preset_path(model, _FAST_KIND)
    try:
        path = pathlib.Path(os.fspath(presets.resolve(model)))
    except TypeError:
        raise TypeError(f"model must be a preset name, a path or a Keras model, got {type(model).__name__}") from None
    if not path.exists():
        raise FileNotFoundError(f"model not found: {path} is not a file, a folder or a preset "
                                f"(the presets: {', '.join(presets.PRESETS)})")
    return path


def needs_tensorflow(model, precision="float32"):
    """Whether :func:`load_network` imports TensorFlow and Keras for ``model``: all but a ``.tflite`` file."""
    return _is_keras_model(model) or model_path(model, precision).suffix != ".tflite"


def load_network(model, precision="float32"):
    """(NumPy network function on ``[H, W, 1]`` bicubic luminance, receptive radius or None).

    ``precision``: one of :data:`PRECISIONS`. ``dynamic_int8`` runs a
    preset's shipped ``<preset>_dynamic_int8.tflite``; a Keras model, a
    ``.keras`` file, or a SavedModel from ``export_saved_model`` (a preset
    without that file, e.g. ``vdsr``) is converted in memory when loaded. A
    ``.tflite`` runs as it was converted: ``float32`` or its own variant.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if _is_keras_model(model):
        if precision == FAST_PRECISION:
            return _fast_network(model)
        return _keras_network(model, precision), getattr(model, "receptive_radius", None)
    path = model_path(model, precision)
    if path.is_dir():
        return _saved_model_network(path, precision)
    if path.suffix == ".keras":
        loaded = _load_keras_file(path)
        if precision == FAST_PRECISION:
            return _fast_network(loaded)
        return _keras_network(loaded, precision), getattr(loaded, "receptive_radius", None)
    if path.suffix == ".tflite":
        metadata = tflite.read_metadata(path)
        if precision not in ("float32", metadata.get("tflite_variant", "float32")):
            raise ValueError(f"{path}: a .tflite model runs at the precision it was converted with "
                             f"({metadata.get('tflite_variant', 'unknown')}); use precision='float32'")
        return tflite.TFLiteNetwork(path), metadata.get("receptive_radius")
    raise ValueError(f"{path}: unknown model format (expected a SavedModel folder, .keras or .tflite)")


# ----------------------------------------------------------------------------
# Predictors for the evaluation protocol: x [H, W] -> sr [H, W] in [0, 1]
# ----------------------------------------------------------------------------


def _predictor(network):
    from cmsc_tf.eval.protocol import to_image

    def predict(x):
        return to_image(network(np.asarray(x, np.float32)[:, :, None])[None], np.shape(x))

    # Keep what the network holds (a loaded SavedModel) alive with the predictor.
    predict.network = network
    return predict


def load_predictor(spec):
    """``bicubic``, a preset name, a ``.keras`` or ``.tflite`` file or a SavedModel directory -> predictor."""
    if presets.is_preset(spec):
        return _predictor(load_network(spec)[0])
    if spec == "bicubic":
        # Imported here: the protocol imports the metrics, which Upscaler users do not need.
        from cmsc_tf.eval.protocol import bicubic_predictor

        return bicubic_predictor
    if not (os.path.isdir(spec) or spec.endswith((".keras", ".tflite"))):
        raise ValueError(
            f"--model must be 'bicubic', a preset ({', '.join(presets.PRESETS)}), a .keras or .tflite file "
            f"or a SavedModel directory, got {spec!r}.")
    if not os.path.exists(spec):
        raise FileNotFoundError(f"model file not found: {spec}")
    return _predictor(load_network(spec)[0])
