"""The cascade loss of Eq. 8 (Hu et al. 2018, arXiv:1802.08808, Sec. III-C).

`L = alpha (1/2K) sum_k ||y^k - yhat^k||^2
   + (1 - alpha) (1/2SK) sum_q sum_k ||y^k - yhat_q^k||^2`, `alpha = 2/(S+2)`.

Keras expresses it as one half-squared-error loss per output with loss
weights `(1 - alpha)/S` for each stage and `alpha` for the final output.
`norm="l1"` puts the absolute error `|y - yhat|` (summed like the squared
norm) in place of the half squared error, with the same weights: not the
paper's loss, a recipe arm (docs/training.md).
"""

import keras

from cmsc_tf.models.loss_choices import NORMS, PIXEL_REDUCTIONS


@keras.saving.register_keras_serializable(package="cmsc_tf")
class HalfSquaredError(keras.losses.Loss):
    """`0.5 * ||y_true - y_pred||^2` per sample, averaged over the batch.

    `pixel_reduction="sum"` sums the squared error over the pixels of a
    sample, as Eq. 8's squared norm does; `"mean"` averages it instead
    (the same loss divided by the patch area, i.e. half of Keras's MSE).
    """

    def __init__(self, pixel_reduction="sum", name="half_squared_error", **kwargs):
        if pixel_reduction not in PIXEL_REDUCTIONS:
            raise ValueError(
                f"pixel_reduction must be one of {PIXEL_REDUCTIONS}, got {pixel_reduction!r}"
            )
        super().__init__(name=name, **kwargs)

        # === Config ===
        self.pixel_reduction = pixel_reduction

    def call(self, y_true, y_pred):
        y_pred = keras.ops.convert_to_tensor(y_pred)
        y_true = keras.ops.cast(y_true, y_pred.dtype)
        per_pixel = self.pixel_error(y_pred - y_true)
        axes = tuple(range(1, len(per_pixel.shape)))
        reduce = keras.ops.sum if self.pixel_reduction == "sum" else keras.ops.mean
        return reduce(per_pixel, axis=axes)

    def pixel_error(self, difference):
        return 0.5 * keras.ops.square(difference)

    def get_config(self):
        config = super().get_config()
        config.update({"pixel_reduction": self.pixel_reduction})
        return config


@keras.saving.register_keras_serializable(package="cmsc_tf")
class AbsoluteError(HalfSquaredError):
    """`||y_true - y_pred||_1` per sample (summed, or averaged, over its pixels), averaged over
    the batch: the L1 counterpart of :class:`HalfSquaredError`."""

    def __init__(self, pixel_reduction="sum", name="absolute_error", **kwargs):
        super().__init__(pixel_reduction=pixel_reduction, name=name, **kwargs)

    def pixel_error(self, difference):
        return keras.ops.abs(difference)


def cascade_alpha(num_stages):
    """The paper's default weight of the final output, `2 / (S + 2)`."""
    return 2.0 / (num_stages + 2)


def cascade_loss(model_or_num_stages, alpha=None, pixel_reduction="sum", norm="l2"):
    """`model.compile` keyword arguments for the loss of Eq. 8.

    Use: `model.compile(optimizer, **cascade_loss(model))`. Accepts a CMSC
    model (its `num_stages` and `cascaded_supervision` decide the outputs)
    or a number of stages (taken as a cascaded, S+1-output model). A
    single-output model gets the plain (half) squared error. `norm="l1"`:
    the absolute error in place of the half squared error.
    """
    if isinstance(model_or_num_stages, int):
        num_stages, cascaded = model_or_num_stages, True
    else:
        num_stages = model_or_num_stages.num_stages
        cascaded = model_or_num_stages.cascaded_supervision
    if num_stages < 1:
        raise ValueError(f"num_stages must be >= 1, got {num_stages}")
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    loss = (HalfSquaredError if norm == "l2" else AbsoluteError)(pixel_reduction)
    if not cascaded:
        return {"loss": loss}
    alpha = cascade_alpha(num_stages) if alpha is None else float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    return {
        "loss": [loss] * (num_stages + 1),
        "loss_weights": [(1.0 - alpha) / num_stages] * num_stages + [alpha],
    }
