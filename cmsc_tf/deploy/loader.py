"""Turning a model on disk into a predictor ``x -> sr`` for :mod:`cmsc_tf.eval.protocol`.

A predictor takes the bicubic-upsampled luminance ``x`` (float ``[H, W]`` in
[0, 1]) and returns the prediction of the same size. Network outputs are
clipped to [0, 1] (a displayed image cannot leave that range; the Bicubic
baseline is not clipped, as the protocol scores it raw).

Accepted model specs: ``bicubic``; a ``.keras`` file (loaded with
``safe_mode=True`` after importing ``cmsc_tf`` so its layers are registered);
a ``.tflite`` file (run with LiteRT, :class:`cmsc_tf.deploy.tflite.TFLiteNetwork`);
a SavedModel directory with a ``luminance`` or ``serving_default`` signature
taking one float32 ``[B, H, W, 1]`` tensor. The SavedModel part is kept to
:func:`_saved_model_predictor` so it can follow the deployment signatures.
"""

import os

import numpy as np
import tensorflow as tf

from cmsc_tf.eval.protocol import bicubic_predictor

# Preferred SavedModel signatures, in order.
_SIGNATURES = ("luminance", "serving_default")


def _batched(x):
    return tf.constant(np.asarray(x, dtype=np.float32)[None, :, :, None])


def final_output(outputs):
    """The final prediction of a model's outputs: ``final`` if named, else the last one."""
    if isinstance(outputs, dict):
        if "final" in outputs:
            return outputs["final"]
        if len(outputs) != 1:
            raise ValueError(f"the model has outputs {sorted(outputs)}; name the prediction 'final'.")
        return next(iter(outputs.values()))
    if isinstance(outputs, (list, tuple)):
        return outputs[-1]
    return outputs


def to_image(output, shape):
    """A [1, H, W, 1] model output as the float64 [H, W] image that is scored, clipped to [0, 1]."""
    array = np.asarray(output, dtype=np.float64)
    if array.ndim != 4 or array.shape[0] != 1 or array.shape[-1] != 1:
        raise ValueError(f"the model returned shape {array.shape}; expected [1, H, W, 1].")
    return np.clip(array[0, :, :, 0], 0.0, 1.0)


def keras_predictor(model):
    """Predictor over an in-memory Keras model (final output, clipped to [0, 1])."""

    # One trace for all image sizes.
    @tf.function(input_signature=[tf.TensorSpec([1, None, None, 1], tf.float32)])
    def run(x):
        return final_output(model(x, training=False))

    def predict(x):
        return to_image(run(_batched(x)), np.shape(x))

    return predict


def _saved_model_predictor(path):
    loaded = tf.saved_model.load(path)
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

    def predict(x):
        return to_image(final_output(signature(**{input_name: _batched(x)})), np.shape(x))

    # Keep the loaded object alive as long as the predictor.
    predict.saved_model = loaded
    return predict


def load_predictor(spec):
    """``bicubic``, a ``.keras`` or ``.tflite`` file or a SavedModel directory -> predictor."""
    if spec == "bicubic":
        return bicubic_predictor
    if os.path.isdir(spec):
        from cmsc_tf.deploy.saved_model import resolve_saved_model_dir

        return _saved_model_predictor(str(resolve_saved_model_dir(spec)))
    if spec.endswith(".keras"):
        if not os.path.isfile(spec):
            raise FileNotFoundError(f"model file not found: {spec}")
        import keras

        import cmsc_tf  # noqa: F401  (registers the cmsc_tf layers for deserialisation)

        return keras_predictor(keras.saving.load_model(spec, safe_mode=True))
    if spec.endswith(".tflite"):
        if not os.path.isfile(spec):
            raise FileNotFoundError(f"model file not found: {spec}")
        return tflite_predictor(spec)
    raise ValueError(
        f"--model must be 'bicubic', a .keras or .tflite file or a SavedModel directory, got {spec!r}.")


def tflite_predictor(path):
    """Predictor over a converted network run with LiteRT (final output, clipped to [0, 1])."""
    from cmsc_tf.deploy.tflite import TFLiteNetwork

    network = TFLiteNetwork(path)

    def predict(x):
        return to_image(network(np.asarray(x, np.float32)[:, :, None])[None], np.shape(x))

    return predict
