"""BatchNormalization statistics recomputed with the current weights (any Keras backend)."""

import keras

from training.lib.keras_hooks import all_layers


def recalibrate_batch_norm(model, batches):
    """Sets every BN layer's moving statistics to the average over `batches` of its batch statistics.

    Training never reads the moving statistics (it normalises with the batch's
    own); only inference does. Early in training, Keras's exponential moving
    average (momentum 0.99) still carries its initial values and lags behind the
    weights, so an evaluation in inference mode can be several dB off from
    what the network does in training mode ("precise BN", Wu & Johnson 2021).
    Averaging the statistics of a few batches with the current weights removes
    that lag; the weights themselves do not change.
    """
    layers = [layer for layer in all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    saved = [(layer.momentum, layer.synchronized) for layer in layers]
    try:
        for index, (x, _) in enumerate(batches):
            for layer in layers:
                # m <- m * i/(i+1) + s/(i+1): the running mean of the batch statistics.
                layer.momentum = index / (index + 1)
                layer.synchronized = False  # called outside replica context here
            model(x, training=True)
    finally:
        for layer, (momentum, synchronized) in zip(layers, saved):
            layer.momentum, layer.synchronized = momentum, synchronized
    return len(layers)
