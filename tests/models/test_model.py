"""The CMSC model: outputs, sizes, depth, variants, gradients, saving."""

import numpy as np
import pytest
import tensorflow as tf

import keras

import cmsc_tf
from cmsc_tf.models.model import CMSC


def small(variant, **extra):
    """A fast-to-run member of `variant` (fewer features and modules)."""
    return cmsc_tf.build_model(variant, num_features=8, num_modules=2, **extra)


@pytest.mark.parametrize("height,width", [(41, 41), (17, 30), (33, 7), (1, 1)])
def test_outputs_count_names_and_shapes(height, width):
    model = small("cmsc", num_stages=3)
    x = np.random.default_rng(0).uniform(size=(2, height, width, 1)).astype("float32")
    outputs = model(x)
    assert model.output_names == ["stage_1", "stage_2", "stage_3", "final"]
    assert len(outputs) == 4
    for out in outputs:
        assert out.shape == (2, height, width, 1)
        assert out.dtype == tf.float32


def test_single_output_variants_have_one_final_output():
    for variant in ("cmsc_ns", "cmsc_nrs", "pmsc", "mr_l3r3", "msc_l3r5", "vdsr"):
        model = small(variant)
        assert model.output_names == ["final"], variant
        assert model(np.zeros((1, 9, 9, 1), "float32")).shape == (1, 9, 9, 1)


def test_full_model_depth_35_and_4_3_million_parameters():
    model = cmsc_tf.build_model("cmsc")
    assert (model.num_stages, model.num_modules, model.num_features) == (3, 5, 64)
    assert model.depth == (2 * 5 + 1) * 3 + 2 == 35
    assert 4.25e6 < model.count_params() < 4.35e6


def test_parameter_count_derived_by_hand():
    """S=2, M=2, 8 features, kernels 3/5; a conv followed by BN has no bias,
    BN holds 4 numbers per channel (gamma, beta, moving mean and variance)."""
    f, s, m = 8, 2, 2
    bn = 4 * f
    feature_extraction = 3 * 3 * 1 * f + bn
    entry = 3 * 3 * f * f + bn
    msc_module = 2 * (3 * 3 * f * f + bn) + 2 * (5 * 5 * f * f + bn)
    stage = entry + m * msc_module
    reconstruction = 3 * 3 * f * 1 + 1
    ensemble = s
    expected = feature_extraction + s * (stage + reconstruction) + ensemble
    assert expected == 19388
    model = cmsc_tf.build_model("cmsc", num_features=f, num_stages=s, num_modules=m)
    assert model.count_params() == expected
    shared = cmsc_tf.build_model("cmsc_sr", num_features=f, num_stages=s, num_modules=m)
    assert shared.count_params() == expected - reconstruction


def measured_receptive_radius(model, size):
    """Half-width of the input region that the centre output pixel depends on,
    read off the gradient (an independent check of the depth)."""
    x = tf.constant(np.random.default_rng(1).uniform(size=(1, size, size, 1)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = model(x, training=False)
        out = out[-1] if isinstance(out, list) else out
        centre = out[0, size // 2, size // 2, 0]
    grad = tape.gradient(centre, x).numpy()[0, :, :, 0]
    rows = np.nonzero(np.abs(grad).max(axis=1) > 0)[0]
    return (rows.max() - rows.min()) // 2


def test_depth_measured_through_the_receptive_field():
    """With 3x3 kernels only, each conv on the longest path widens the
    receptive field by one pixel per side: radius == depth == (2M+1)S+2."""
    model = cmsc_tf.build_model("cmsc", num_features=4, kernel_sizes=(3, 3))
    assert measured_receptive_radius(model, 81) == model.depth == 35


@pytest.mark.parametrize(
    "variant,overrides",
    [("cmsc", dict(num_stages=2, num_modules=2)), ("msc_l3r7", {}), ("vdsr", dict(num_modules=4))],
)
def test_receptive_radius_property_matches_gradient(variant, overrides):
    # Seeded: with 4 features, some random draws leave every ReLU path to the
    # outermost input pixel dead (a zero gradient there), whatever the depth.
    keras.utils.set_random_seed(0)
    model = cmsc_tf.build_model(variant, num_features=4, **overrides)
    radius = model.receptive_radius
    assert measured_receptive_radius(model, 2 * radius + 11) == radius


def test_learned_weights_start_at_one_over_s():
    for s in (1, 2, 4):
        model = small("cmsc", num_stages=s)
        weights = model.get_layer("final").stage_weights.numpy()
        np.testing.assert_allclose(weights, np.full(s, 1.0 / s))
        # The final output is then the mean of the stage outputs.
        outs = model(np.random.default_rng(s).uniform(size=(1, 8, 8, 1)).astype("float32"))
        np.testing.assert_allclose(outs[-1], np.mean(outs[:-1], axis=0), atol=1e-6)


def test_zero_reconstruction_init_starts_as_bicubic():
    model = small("cmsc", reconstruction_initializer="zeros")
    x = np.random.default_rng(2).uniform(size=(1, 12, 12, 1)).astype("float32")
    for out in model(x):
        np.testing.assert_allclose(out, x, atol=1e-6)


def test_variants_are_one_class_with_distinct_configurations():
    assert set(cmsc_tf.VARIANTS) >= {
        "cmsc", "cmsc_sr", "cmsc_ns", "cmsc_nrs", "pmsc",
        "mr_l3r3", "mr_l5r5", "msc_l3r5", "msc_l3r7", "vdsr",
    }
    configs = {}
    for variant in cmsc_tf.VARIANTS:
        model = cmsc_tf.build_model(variant)
        assert type(model) is CMSC
        key = tuple(sorted((k, str(v)) for k, v in model.get_config().items() if k != "name"))
        configs[key] = variant
    assert len(configs) == len(cmsc_tf.VARIANTS)
    assert cmsc_tf.build_model("pmsc").num_modules == 15
    assert cmsc_tf.build_model("mr_l5r5").kernel_sizes == (5, 5)
    assert cmsc_tf.build_model("cmsc_nrs").residual_features is False


def test_overrides_apply_or_are_rejected_clearly():
    assert cmsc_tf.build_model("vdsr", num_modules=6).depth == 8
    assert cmsc_tf.build_model("pmsc", num_modules=3, num_features=8).num_modules == 3
    with pytest.raises(ValueError, match="vdsr.*num_stages"):
        cmsc_tf.build_model("vdsr", num_stages=3)
    with pytest.raises(ValueError, match="mr_l3r3.*kernel_sizes"):
        cmsc_tf.build_model("mr_l3r3", kernel_sizes=(3, 5))
    # Restating a defining value, in any sequence type, is not a conflict.
    assert cmsc_tf.build_model("mr_l3r3", kernel_sizes=[3, 3], num_features=4).kernel_sizes == (3, 3)
    with pytest.raises(ValueError, match="cascaded_supervision"):
        cmsc_tf.build_model("cmsc_ns", cascaded_supervision=True)
    with pytest.raises(ValueError, match="unknown override 'num_blocks'"):
        cmsc_tf.build_model("cmsc", num_blocks=3)
    with pytest.raises(ValueError, match="unknown variant"):
        cmsc_tf.build_model("srcnn")
    with pytest.raises(ValueError, match="num_stages must be a positive integer"):
        cmsc_tf.build_model("cmsc", num_stages=0)


@pytest.mark.parametrize("variant", ["cmsc", "cmsc_sr", "cmsc_ns", "cmsc_nrs", "vdsr"])
def test_gradients_reach_every_trainable_variable(variant):
    model = small(variant)
    model.compile(optimizer="sgd", **cmsc_tf.cascade_loss(model))
    rng = np.random.default_rng(5)
    x = rng.uniform(size=(2, 13, 13, 1)).astype("float32")
    y = rng.uniform(size=(2, 13, 13, 1)).astype("float32")
    with tf.GradientTape() as tape:
        y_pred = model(x, training=True)
        loss = model.compute_loss(x=x, y=y, y_pred=y_pred)
    grads = tape.gradient(loss, model.trainable_variables)
    for var, grad in zip(model.trainable_variables, grads):
        assert grad is not None, var.path
        assert np.any(np.asarray(grad) != 0), var.path


@pytest.mark.parametrize("variant", list(cmsc_tf.VARIANTS))
def test_keras_save_load_safe_mode_identical(variant, tmp_path):
    model = small(variant)
    x = np.random.default_rng(6).uniform(size=(1, 15, 11, 1)).astype("float32")
    # A few training-mode calls move BN statistics away from their init,
    # so the comparison covers non-trainable state too.
    for _ in range(2):
        model(x, training=True)
    path = tmp_path / f"{variant}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded) is CMSC
    assert loaded.get_config() == model.get_config()
    for got, want in zip(keras.tree.flatten(loaded(x)), keras.tree.flatten(model(x))):
        np.testing.assert_array_equal(got, want)


def test_initializer_objects_survive_save_and_load(tmp_path):
    model = small("cmsc", kernel_initializer=keras.initializers.HeUniform(seed=3),
                  reconstruction_initializer=keras.initializers.Zeros())
    path = tmp_path / "objects.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert loaded.get_config() == model.get_config()
    x = np.random.default_rng(8).uniform(size=(1, 9, 9, 1)).astype("float32")
    np.testing.assert_allclose(loaded(x)[-1], x, atol=1e-6)  # zero reconstruction: the input


def test_fit_broadcasts_one_target_to_every_output():
    model = small("cmsc", num_stages=2)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), **cmsc_tf.cascade_loss(model))
    rng = np.random.default_rng(7)
    x = rng.uniform(size=(4, 11, 11, 1)).astype("float32")
    history = model.fit(x, x, epochs=1, batch_size=2, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert {"stage_1_loss", "stage_2_loss", "final_loss"} <= set(history.history)
