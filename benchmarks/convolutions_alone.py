"""A CMSC's convolutions with nothing between them, as a Keras model: the bound of the speed benchmarks.

Imported by benchmarks/precision.py (inference: the int8 bound, ReLU and bias
fused as XNNPACK fuses them) and benchmarks/training_flops.py (its ``k``
settings: a train step of the convolutions alone, no activation, no bias).
Keras only (any backend). The PyTorch counterpart is
``build_convolutions_alone`` in benchmarks/cmsc_torch.py.
"""


def convolutions_alone(model, activation="relu", use_bias=True):
    """A Keras model of ``model``'s convolutions with nothing between them.

    Convolutions of the shapes of ``model``'s kernels (``model.weights`` order,
    random weights: speed does not depend on them); those of the feature width
    run one after another, ``activation`` fused into each (ReLU is free in
    XNNPACK's GEMM; ``None``: no operation at all between them); those of
    another output width (the reconstructions) branch off and are summed into
    the output. Same convolution FLOPs as ``model``; the output means nothing.
    Built under the dtype policy in force (e.g. mixed_bfloat16).
    """
    import keras

    kernels = [w for w in model.weights if len(w.shape) == 4]
    width = kernels[0].shape[-1]
    inputs = keras.Input((None, None, 1))
    trunk, side = inputs, []
    # Variance 2 / fan-in with ReLU, 1 / fan-in without: the activations keep
    # their size along the chain (no infinities, no denormals).
    initializer = "he_normal" if activation == "relu" else "lecun_normal"
    for kernel in kernels:
        kh, kw, _, out = kernel.shape
        conv = keras.layers.Conv2D(out, (kh, kw), padding="same", activation=activation if out == width else None,
                                   use_bias=use_bias, kernel_initializer=initializer)
        y = conv(trunk)
        if out == width:
            trunk = y
        else:
            side.append(y)
    return keras.Model(inputs, keras.layers.Add()(side) if len(side) > 1 else side[0])
