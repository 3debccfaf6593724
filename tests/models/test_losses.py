"""The cascade loss of Eq. 8 against a hand computation."""

import numpy as np
import pytest

import cmsc_tf
from cmsc_tf.models.losses import AbsoluteError, HalfSquaredError


def eq8(y, stage_preds, final_pred, alpha):
    """Eq. 8 written out: squared norms summed per patch, 1/2K and 1/2SK."""
    k = y.shape[0]
    s = len(stage_preds)
    final_term = sum(np.sum((y[i] - final_pred[i]) ** 2) for i in range(k)) / (2 * k)
    stage_term = sum(
        np.sum((y[i] - p[i]) ** 2) for p in stage_preds for i in range(k)
    ) / (2 * s * k)
    return alpha * final_term + (1 - alpha) * stage_term


def test_alpha_default_is_two_over_s_plus_two():
    assert cmsc_tf.cascade_alpha(3) == pytest.approx(0.4)
    weights = cmsc_tf.cascade_loss(3)["loss_weights"]
    assert weights == pytest.approx([0.2, 0.2, 0.2, 0.4])


@pytest.mark.parametrize("alpha", [None, 0.7])
def test_model_loss_equals_eq8(alpha):
    model = cmsc_tf.build_model("cmsc", num_features=4, num_modules=1, num_stages=3)
    model.compile(optimizer="sgd", **cmsc_tf.cascade_loss(model, alpha=alpha))
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(3, 9, 7, 1)).astype("float32")
    y = rng.uniform(size=(3, 9, 7, 1)).astype("float32")
    preds = model(x, training=False)
    loss = float(model.compute_loss(x=x, y=y, y_pred=preds))
    a = 0.4 if alpha is None else alpha
    expected = eq8(y.astype(np.float64), [np.asarray(p, np.float64) for p in preds[:-1]],
                   np.asarray(preds[-1], np.float64), a)
    assert loss == pytest.approx(expected, rel=1e-5)


def test_single_output_model_gets_plain_squared_error():
    model = cmsc_tf.build_model("vdsr", num_features=4, num_modules=2)
    kwargs = cmsc_tf.cascade_loss(model)
    assert "loss_weights" not in kwargs
    model.compile(optimizer="sgd", **kwargs)
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(2, 5, 5, 1)).astype("float32")
    y = rng.uniform(size=(2, 5, 5, 1)).astype("float32")
    pred = np.asarray(model(x), np.float64)
    loss = float(model.compute_loss(x=x, y=y, y_pred=model(x)))
    assert loss == pytest.approx(np.sum((pred - y) ** 2) / (2 * 2), rel=1e-5)


def test_mean_pixel_reduction_divides_by_area():
    y = np.ones((2, 4, 5, 1), "float32")
    p = np.zeros((2, 4, 5, 1), "float32")
    assert float(HalfSquaredError("sum")(y, p)) == pytest.approx(10.0)
    assert float(HalfSquaredError("mean")(y, p)) == pytest.approx(0.5)


def test_l1_norm_puts_the_absolute_error_in_eq8_with_the_same_weights():
    """Eq. 8 by hand with |y - yhat| summed per patch in place of the halved squared norm."""
    model = cmsc_tf.build_model("cmsc", num_features=4, num_modules=1, num_stages=2)
    model.compile(optimizer="sgd", **cmsc_tf.cascade_loss(model, norm="l1"))
    rng = np.random.default_rng(2)
    x = rng.uniform(size=(3, 8, 6, 1)).astype("float32")
    y = rng.uniform(size=(3, 8, 6, 1)).astype("float32")
    preds = [np.asarray(p, np.float64) for p in model(x, training=False)]
    l1 = [np.abs(y - p).sum(axis=(1, 2, 3)).mean() for p in preds]
    alpha = 0.5  # 2 / (S + 2) with S = 2
    expected = alpha * l1[-1] + (1 - alpha) / 2 * (l1[0] + l1[1])
    assert float(model.compute_loss(x=x, y=y, y_pred=model(x, training=False))) == pytest.approx(expected, rel=1e-5)
    # Hand values: one sample of 4 x 5 pixels each off by 0.5 (sum 10, mean 0.5).
    assert float(AbsoluteError("sum")(np.full((1, 4, 5, 1), 0.5, "float32"), np.zeros((1, 4, 5, 1), "float32"))) \
        == pytest.approx(10.0)
    assert float(AbsoluteError("mean")(np.full((1, 4, 5, 1), 0.5, "float32"), np.zeros((1, 4, 5, 1), "float32"))) \
        == pytest.approx(0.5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="alpha"):
        cmsc_tf.cascade_loss(3, alpha=1.5)
    with pytest.raises(ValueError, match="pixel_reduction"):
        HalfSquaredError("max")
    with pytest.raises(ValueError, match="norm must be one of"):
        cmsc_tf.cascade_loss(3, norm="huber")
