"""The optimizers of a run on any Keras backend: SGD with momentum or Adam, weight decay, clipping.

The learning rate is a plain float here (a variable of the optimizer, saved
in checkpoints); trainer sets it at each epoch (`TrainConfig.learning_rate_at`).
"""

# Keras is imported where it is used: training.main's flags read the names
# below before the backend loads (its --help answers without it).

OPTIMIZERS = ("sgd", "adam")
# How the gradient is clipped before each update (Sec. IV-B; the readings are
# discussed in docs/training.md):
#   value        each element to [-t, t] (the paper's words taken literally);
#   global_norm  the whole gradient's L2 norm to at most t (the public PyTorch
#                VDSR script's clip_grad_norm, whose hyperparameters the paper repeats);
#   adjustable   each element to [-t/lr, t/lr] at the current learning rate lr
#                (VDSR's "adjustable gradient clipping", Kim et al. 2016): every
#                weight moves by at most t per step (before momentum), whatever lr is.
CLIPPING = ("none", "value", "global_norm", "adjustable")


def make_optimizer(name, learning_rate, momentum=0.9, weight_decay=0.0, clip="none",
                   clip_threshold=0.4, replicas=1, ema_momentum=0.0):
    """A Keras optimizer; `replicas` > 1 on TensorFlow clips the gradient summed over replicas.

    `ema_momentum` > 0 keeps Keras's moving average of the weights in the
    optimizer (`use_ema`; training.lib.callbacks.swap_ema_weights exchanges it
    with the model's weights).

    Keras's `weight_decay` is decoupled (w -= lr * wd * w, outside the
    momentum), which for SGD differs from Caffe's L2-in-the-gradient only in
    how the decay term passes through the momentum.
    """
    import keras

    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {OPTIMIZERS}")
    if clip not in CLIPPING:
        raise ValueError(f"unknown clipping {clip!r}; choose one of {CLIPPING}")
    options = {}
    if clip == "value":
        options["clipvalue"] = clip_threshold
    elif clip == "global_norm":
        options["global_clipnorm"] = clip_threshold
    if weight_decay > 0:
        options["weight_decay"] = weight_decay
    if ema_momentum > 0:
        options.update(use_ema=True, ema_momentum=ema_momentum)
    cls = keras.optimizers.SGD if name == "sgd" else keras.optimizers.Adam
    if name == "sgd":
        options["momentum"] = momentum
    mixins = []
    if replicas > 1 and clip != "none" and keras.backend.backend() == "tensorflow":
        from training.lib.keras_hooks import ClipAfterAllReduce

        mixins.append(ClipAfterAllReduce)
    if clip == "adjustable":
        from training.lib.keras_hooks import AdjustableClipping

        mixins.append(AdjustableClipping)
    if mixins:
        cls = type(cls.__name__, (*mixins, cls), {})
    optimizer = cls(float(learning_rate), **options)
    if clip == "adjustable":
        optimizer.adjustable_clip_threshold = float(clip_threshold)
    return optimizer
