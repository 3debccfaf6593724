"""training.jax_lib: NumPy training pairs against the tf.data pipeline, and runs that resume and export.

The trainer is backend-agnostic. Most runs here use the TensorFlow backend;
one subprocess trains with KERAS_BACKEND=jax on the CPU (jax is in the test
extra) with TensorFlow made unimportable, and TensorFlow then exports the
checkpoint it wrote.
"""

import dataclasses
import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import skimage.data
import tensorflow as tf

import cmsc_tf
from tests import training_helpers as helpers
from training import checkpointing, curves, jax_lib, pipeline, train_lib
from training.flag_values import parse_overrides

TINY = parse_overrides(helpers.TINY_OVERRIDES.split(","))


def photo(height, width):
    return np.ascontiguousarray(skimage.data.camera()[60:60 + height, 90:90 + width])


def tf_degraded_variant(y, variant, scale):
    """The tf.data pipeline's order: augment the whole image, modcrop, degrade."""
    image = pipeline.augment(tf.constant(y[..., None]), tf.constant(variant))
    hr = pipeline.modcrop(image, scale) / 255.0
    return pipeline.degrade(hr, scale)[..., 0].numpy(), hr[..., 0].numpy()


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("variant", [0, 3, 6, 17, 23])  # identity, rot90+flip, rot270, 0.5 variants
def test_degrade_then_orient_equals_the_pipelines_orient_then_degrade(variant, scale):
    # 48 x 72 and its 0.5 variant 24 x 36 are multiples of 2, 3 and 4: modcrop drops
    # nothing, so both orders must give the same pair (bicubic resizing commutes
    # with flips and quarter turns on such images).
    y = photo(48, 72)
    downscale, turns, flipped = pipeline.variant_parts(variant)
    lr, hr = jax_lib.degraded_pair(jax_lib.size_variant(y, jax_lib.DOWNSCALES[downscale]), scale)
    expected_lr, expected_hr = tf_degraded_variant(y, variant, scale)
    np.testing.assert_array_equal(jax_lib.orient(hr, turns, flipped), expected_hr)
    np.testing.assert_allclose(jax_lib.orient(lr, turns, flipped), expected_lr, atol=2e-5)


def test_size_variants_are_the_pipelines():
    y = photo(50, 70)
    for downscale, factor in enumerate(jax_lib.DOWNSCALES):
        ours = jax_lib.size_variant(y, factor).astype(np.float32)
        theirs = pipeline.augment(tf.constant(y[..., None]), tf.constant(8 * downscale))[..., 0].numpy()
        assert ours.shape == theirs.shape
        # float64 here, float32 there: a rare .5 boundary may round the other way.
        assert np.abs(ours - theirs).max() <= 1 and np.mean(ours != theirs) < 1e-3


def find_crop(patch, images, size):
    """(image index, turns, flipped, top, left) where `patch` is an oriented crop of images[i]."""
    for index, image in enumerate(images):
        windows = np.lib.stride_tricks.sliding_window_view(image, (size, size))
        for turns in range(4):
            for flipped in range(2):
                # Undo the orientation, then look for the crop.
                plain = np.rot90(patch[:, ::-1] if flipped else patch, -turns)
                hits = np.argwhere(np.all(windows == plain, axis=(2, 3)))
                if len(hits):
                    return index, turns, flipped, *hits[0]
    return None


def test_batches_are_aligned_oriented_crops_of_the_degraded_images():
    size = 21
    # Two different photographs: an HR crop must identify its image unambiguously.
    coins = np.ascontiguousarray(skimage.data.coins()[40:73, 100:145])
    source = jax_lib.PairSource([photo(40, 52), coins], scales=(3,), patch_size=size, seed=3)
    lrs = [lr for lr, _ in source.pairs[3]]
    hrs = [hr for _, hr in source.pairs[3]]
    assert len(hrs) == 4  # 2 images x (1, 0.7): the 0.5 variants are smaller than a patch
    lr_batch, hr_batch = source.batch(step=5, batch_size=12)
    assert lr_batch.shape == hr_batch.shape == (12, size, size, 1) and lr_batch.dtype == np.float32
    orientations = set()
    for lr, hr in zip(lr_batch[..., 0], hr_batch[..., 0]):
        found = find_crop(hr, hrs, size)
        assert found is not None
        index, turns, flipped, top, left = found
        orientations.add((turns, flipped))
        crop = lrs[index][top:top + size, left:left + size]
        np.testing.assert_array_equal(jax_lib.orient(crop, turns, flipped), lr)
    assert len(orientations) > 2  # augmented: not all crops upright


def test_batches_are_a_function_of_seed_and_step():
    images = [photo(40, 52)]
    a = jax_lib.PairSource(images, scales=(2, 4), patch_size=17, seed=0)
    b = jax_lib.PairSource(images, scales=(2, 4), patch_size=17, seed=0)
    c = jax_lib.PairSource(images, scales=(2, 4), patch_size=17, seed=1)
    for x, y in zip(a.batch(7, 6), b.batch(7, 6)):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.batch(7, 6)[1], a.batch(8, 6)[1])
    assert not np.array_equal(a.batch(7, 6)[1], c.batch(7, 6)[1])


def test_batch_scales_are_those_the_pairs_were_drawn_at():
    # Each pair's LR-up is its HR's degradation at the reported scale: the crop
    # of an unaugmented image at a known offset is found in exactly one of the
    # per-scale degradations.
    images = [photo(48, 60)]
    source = jax_lib.PairSource(images, scales=(2, 3, 4), patch_size=17, augment=False, seed=3)
    lr, hr, scales = source.batch_and_scales(5, 12)
    np.testing.assert_array_equal(source.batch(5, 12)[0], lr)
    assert set(scales) == {2, 3, 4}
    for lr_patch, hr_patch, scale in zip(lr[..., 0], hr[..., 0], scales):
        matches = set()
        for candidate in (2, 3, 4):
            full_lr, full_hr = jax_lib.degraded_pair(images[0], candidate)
            for top in range(full_hr.shape[0] - 16):
                for left in range(full_hr.shape[1] - 16):
                    if (np.array_equal(full_hr[top:top + 17, left:left + 17], hr_patch)
                            and np.array_equal(full_lr[top:top + 17, left:left + 17], lr_patch)):
                        matches.add(candidate)
        assert matches == {scale}


def test_scale_loss_weights_multiply_each_pairs_term_of_eq8():
    # The loss Keras reports for a weighted batch is Eq. 8 with each pair's
    # half squared errors multiplied by its scale's weight, averaged over the batch.
    source = jax_lib.PairSource([photo(48, 60)], scales=(2, 4), patch_size=17, seed=0)
    weights = {2: 3.0, 4: 0.5}
    lr, hr, w = jax_lib._Batches(source, 8, 0, 1, weights)[0]
    scales = source.batch_and_scales(0, 8)[2]
    np.testing.assert_array_equal(w, [weights[s] for s in scales])
    model = cmsc_tf.build_model("cmsc", **TINY)
    model.compile(keras.optimizers.Adam(), **cmsc_tf.cascade_loss(model))
    outputs = [keras.ops.convert_to_numpy(o) for o in model(lr, training=False)]
    alpha = cmsc_tf.cascade_alpha(model.num_stages)
    per_pair = sum(((1 - alpha) / model.num_stages if i < model.num_stages else alpha)
                   * 0.5 * ((o - hr) ** 2).sum(axis=(1, 2, 3)) for i, o in enumerate(outputs))
    expected = float(np.mean(per_pair * w))
    reported = model.evaluate(lr, hr, sample_weight=w, batch_size=8, verbose=0, return_dict=True)["loss"]
    np.testing.assert_allclose(reported, expected, rtol=1e-4)
    assert abs(float(np.mean(per_pair)) - expected) > 1e-3 * expected  # the weights changed it
    # Unweighted: the batches carry no weights at all.
    assert len(jax_lib._Batches(source, 8, 0, 1)[0]) == 2


def test_a_run_with_unit_scale_weights_equals_the_unweighted_run(tmp_path, luminance):
    jax_lib.run(tiny_run(luminance, tmp_path / "plain", epochs=1))
    jax_lib.run(tiny_run(luminance, tmp_path / "unit", epochs=1, scale_loss_weights={2: 1.0, 3: 1.0, 4: 1.0}))
    jax_lib.run(tiny_run(luminance, tmp_path / "x2", epochs=1, scale_loss_weights={2: 4.0, 3: 1.0, 4: 1.0}))
    _, plain, _ = weights_of(tmp_path / "plain")
    _, unit, _ = weights_of(tmp_path / "unit")
    _, x2, _ = weights_of(tmp_path / "x2")
    for a, b in zip(plain, unit):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert any(not np.allclose(a, b, rtol=1e-4, atol=1e-5) for a, b in zip(plain, x2))
    config = json.loads((tmp_path / "x2" / "config.json").read_text())
    assert config["scale_loss_weights"] == {"2": 4.0, "3": 1.0, "4": 1.0}


def test_images_smaller_than_a_patch_at_every_size_are_refused():
    with pytest.raises(ValueError, match="at least 41 pixels"):
        jax_lib.PairSource([photo(30, 30)], scales=(2,))
    with pytest.raises(ValueError, match="scales"):
        jax_lib.PairSource([photo(60, 60)], scales=(1,))


def test_luminance_npz_round_trip_and_bad_files(tmp_path):
    images = [photo(20, 30), photo(11, 7)]
    path = jax_lib.save_luminance(tmp_path / "y.npz", images, ["a", "b"])
    for ours, theirs in zip(jax_lib.load_luminance(path), images):
        np.testing.assert_array_equal(ours, theirs)
    with pytest.raises(ValueError, match="uint8"):
        jax_lib.save_luminance(tmp_path / "bad.npz", [images[0].astype(np.float32)])
    assert not (tmp_path / "bad.npz").exists()
    (tmp_path / "corrupt.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a luminance .npz"):
        jax_lib.load_luminance(tmp_path / "corrupt.npz")
    with pytest.raises(FileNotFoundError, match="pack_luminance"):
        jax_lib.load_luminance(tmp_path / "missing.npz")


# ----------------------------------------------------------------------------
# Runs (TensorFlow backend, tiny model).


@pytest.fixture(scope="module")
def luminance(tmp_path_factory):
    images = [skimage.data.camera()[:96, :128], skimage.data.moon()[:80, :100]]
    return str(jax_lib.save_luminance(tmp_path_factory.mktemp("lum") / "y.npz", images))


def tiny_run(luminance, model_dir, **changes):
    fields = dict(luminance=luminance, model_dir=str(model_dir), model_overrides=TINY, batch_size=4,
                  steps_per_epoch=3, epochs=3, learning_rate=1e-3, seed=0)
    fields.update(changes)
    return jax_lib.JaxTrainConfig(**fields)


def weights_of(model_dir):
    model = cmsc_tf.build_model("cmsc", **TINY)
    model.compile(keras.optimizers.Adam(), **cmsc_tf.cascade_loss(model))
    state = checkpointing.restore(model, model_dir)
    return state, [v.numpy() for v in model.weights], [v.numpy() for v in model.optimizer.variables]


def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path, luminance):
    straight = jax_lib.run(tiny_run(luminance, tmp_path / "straight"))
    assert straight["epochs_done"] == 3 and straight["patches_seen"] == 3 * 3 * 4
    jax_lib.run(tiny_run(luminance, tmp_path / "split", epochs=2))
    jax_lib.run(tiny_run(luminance, tmp_path / "split"))
    state_a, weights_a, slots_a = weights_of(tmp_path / "straight")
    state_b, weights_b, slots_b = weights_of(tmp_path / "split")
    assert state_a["epoch"] == state_b["epoch"] == 3
    for a, b in zip(weights_a + slots_a, weights_b + slots_b):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    log = (tmp_path / "split" / jax_lib.LOG_FILE).read_text().splitlines()
    assert log[0].startswith("epoch,step,learning_rate,seconds") and len(log) == 4
    config = json.loads((tmp_path / "split" / "config.json").read_text())
    assert config["backend"] == "tensorflow" and config["model_overrides"] == TINY
    # A later phase with other epoch lengths and batches: steps and patches are counted.
    later = jax_lib.run(tiny_run(luminance, tmp_path / "split", epochs=4, steps_per_epoch=2, batch_size=2))
    assert (later["epochs_done"], later["steps_done"], later["patches_seen"]) == (4, 3 * 3 + 2, 3 * 3 * 4 + 2 * 2)
    # The log's step column (what plot_curves draws) follows the counted steps.
    assert [step for step, _ in curves.read_curve(tmp_path / "split", "loss")] == [3, 6, 9, 11]


def test_bad_settings_are_refused_before_any_work(tmp_path, luminance):
    for changes, message in [({"luminance": ""}, "no luminance file given"),
                             ({"time_budget_s": -1.0}, "time_budget_s must be >= 0"),
                             ({"lr_decay_factor": 0.0}, "lr_decay_factor must be positive"),
                             ({"decay_at_budget_fraction": 0.5}, "needs time_budget_s"),
                             ({"scale_loss_weights": {2: 1.0, 3: 1.0}}, r"no weight for scale\(s\) \[4\]"),
                             ({"scale_loss_weights": {2: 1.0, 3: 0.0, 4: 1.0}}, "must be positive")]:
        config = dataclasses.replace(tiny_run(luminance, tmp_path / "run"), **changes)
        with pytest.raises(ValueError, match=message):
            jax_lib.run(config)
    assert not (tmp_path / "run").exists()


def test_learning_rate_decays_at_epochs_and_at_the_budget_fraction():
    config = jax_lib.JaxTrainConfig(luminance="", model_dir="", learning_rate=1e-3,
                                    lr_decay_at_epochs=(4,), lr_decay_factor=0.1)
    rates = [jax_lib.learning_rate_at(config, e) for e in range(6)]
    np.testing.assert_allclose(rates, [1e-3] * 4 + [1e-4] * 2)
    np.testing.assert_allclose(jax_lib.learning_rate_at(config, 5, decayed_at_epoch=2), 1e-5)
    np.testing.assert_allclose(jax_lib.learning_rate_at(config, 1, decayed_at_epoch=2), 1e-3)


def test_time_budget_stops_between_epochs_records_the_decay_and_carries_over(tmp_path, luminance,
                                                                              monkeypatch):
    # A fake clock on which every epoch's fit takes 2 s: the wall clock of a
    # shared CI machine would make the epoch counts below vary.
    now = [0.0]
    fit = keras.Model.fit

    def two_second_fit(self, *args, **kwargs):
        now[0] += 2.0
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", two_second_fit)
    config = tiny_run(luminance, tmp_path, epochs=1000, time_budget_s=15.0, decay_at_budget_fraction=0.5)
    summary = jax_lib.run(config, clock=lambda: now[0])
    # Epoch e starts at 2e s and runs while 2e + 2 (the last epoch's length) <= 15: epochs 0..6.
    # The decay comes at the first epoch started at or after 7.5 s: epoch 4.
    assert (summary["epochs_done"], summary["seconds"], summary["budget_decay_epoch"]) == (7, 14.0, 4)
    rates = np.loadtxt(tmp_path / jax_lib.LOG_FILE, delimiter=",", skiprows=1, usecols=2, ndmin=1)
    np.testing.assert_allclose(rates, [1e-3] * 4 + [1e-4] * 3)
    # Rerun: the 14 s spent are kept, so nothing is left of the budget.
    assert jax_lib.run(config, clock=lambda: now[0])["epochs_done"] == 7
    # A larger budget continues from 14 s (epochs 7, 8, 9 end at 16, 18, 20 s), keeping the decay.
    summary = jax_lib.run(dataclasses.replace(config, time_budget_s=20.0), clock=lambda: now[0])
    assert (summary["epochs_done"], summary["seconds"], summary["budget_decay_epoch"]) == (10, 20.0, 4)


def test_nan_loss_keeps_the_last_finite_checkpoint(tmp_path, luminance):
    jax_lib.run(tiny_run(luminance, tmp_path, epochs=1))
    _, before, _ = weights_of(tmp_path)
    with pytest.raises(jax_lib.TrainingError, match="loss is nan"):
        jax_lib.run(tiny_run(luminance, tmp_path, epochs=3, learning_rate=1e38))
    state, after, _ = weights_of(tmp_path)
    assert state["epoch"] == 1
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


def test_bn_recalibration_runs_after_each_epoch_on_the_fixed_calibration_batches(tmp_path, luminance):
    # Same run twice, with and without recalibration: the trained weights agree,
    # and the BN statistics are those of recalibrate_batch_norm (tested in
    # test_training_run) on the batches at CALIBRATION_STEP.. of the run's source.
    from training.batch_norm import recalibrate_batch_norm

    jax_lib.run(tiny_run(luminance, tmp_path / "plain", epochs=1))
    jax_lib.run(tiny_run(luminance, tmp_path / "recalibrated", epochs=1, bn_recalibration_batches=3))
    model = cmsc_tf.build_model("cmsc", **TINY)
    model.compile(keras.optimizers.Adam(), **cmsc_tf.cascade_loss(model))
    checkpointing.restore(model, tmp_path / "plain")
    source = jax_lib.PairSource(jax_lib.load_luminance(luminance), seed=0)
    recalibrate_batch_norm(model, [source.batch(jax_lib.CALIBRATION_STEP + i, 4) for i in range(3)])
    _, plain, _ = weights_of(tmp_path / "plain")
    _, recalibrated, _ = weights_of(tmp_path / "recalibrated")
    moving = [i for i, v in enumerate(model.weights) if "moving" in v.path]
    assert moving
    for i, (expected, a, b) in enumerate(zip(model.weights, plain, recalibrated)):
        np.testing.assert_allclose(b, expected.numpy(), rtol=1e-5, atol=1e-6)
        if i in moving:
            assert not np.allclose(a, b)  # Keras's moving averages were replaced


def test_a_run_exports_through_training_export(tmp_path, luminance):
    jax_lib.run(tiny_run(luminance, tmp_path / "run", epochs=1))
    written = train_lib.export_checkpoint(tmp_path / "run", tmp_path / "out" / "tiny", ["keras"])
    loaded = keras.models.load_model(written["keras"], safe_mode=True)
    _, weights, _ = weights_of(tmp_path / "run")
    for a, b in zip(loaded.weights, weights):
        np.testing.assert_array_equal(a.numpy(), b)


def test_the_command_line_reports_a_missing_luminance_file_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "training.jax_main", f"--luminance={tmp_path}/none.npz",
         f"--model_dir={tmp_path}/run"], cwd=helpers.REPO_ROOT, env=helpers.python_env(),
        capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path}/none.npz: no such luminance file (make one with "
        "python -m training.pack_luminance)")


NO_TENSORFLOW = """
import runpy, sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError("tensorflow is blocked in this test")
sys.meta_path.insert(0, Block())
luminance, model_dir, x_path, overrides = sys.argv[1:5]
sys.argv = ["jax_main", "--luminance=" + luminance, "--model_dir=" + model_dir, "--batch_size=4",
            "--model_overrides=" + overrides, "--steps_per_epoch=3", "--epochs=2"]
try:
    runpy.run_module("training.jax_main", run_name="__main__")
except SystemExit as exit:
    assert not exit.code, exit.code
import json, keras, numpy as np, cmsc_tf
from training import checkpointing
config = json.load(open(model_dir + "/config.json"))
model = cmsc_tf.build_model(config["variant"], **config["model_overrides"])
model.load_weights(model_dir + "/" + checkpointing.read_state(model_dir)["weights"])
np.save(x_path + ".out.npy", keras.ops.convert_to_numpy(model(np.load(x_path), training=False)[-1]))
print(keras.backend.backend(), sorted(m for m in sys.modules if m.startswith("tensorflow")))
"""


def test_jax_backend_trains_without_tensorflow_and_tensorflow_exports_the_result(tmp_path, luminance):
    pytest.importorskip("jax")  # in the test extra; optional for users
    x = np.random.default_rng(2).random((1, 23, 29, 1)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    env = dict(helpers.python_env(), KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    result = subprocess.run(
        [sys.executable, "-c", NO_TENSORFLOW, luminance, str(tmp_path / "run"), str(tmp_path / "x.npy"),
         helpers.TINY_OVERRIDES], cwd=helpers.REPO_ROOT, env=env, capture_output=True, text=True,
        timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "jax []"  # no tensorflow module was loaded
    assert json.loads((tmp_path / "run" / "config.json").read_text())["backend"] == "jax"
    assert checkpointing.read_state(tmp_path / "run")["epoch"] == 2

    written = train_lib.export_checkpoint(tmp_path / "run", tmp_path / "out" / "tiny", ["keras"])
    loaded = keras.models.load_model(written["keras"], safe_mode=True)
    jax_output = np.load(tmp_path / "x.npy.out.npy")
    assert np.abs(jax_output - x).max() > 1e-4  # trained away from the bicubic start
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)[-1]), jax_output, atol=2e-5)


def test_pack_luminance_writes_the_training_sets_luminance(tmp_path):
    from cmsc_tf.io import tfds_sets

    tfds_dir = tmp_path / "tfds"
    arrays = tfds_sets.load_arrays("skimage_train", tfds_dir=str(tfds_dir))
    result = subprocess.run(
        [sys.executable, "-m", "training.pack_luminance", "--train_sets=skimage_train",
         f"--tfds_dir={tfds_dir}", f"--out={tmp_path}/y.npz"], cwd=helpers.REPO_ROOT,
        env=helpers.python_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1].startswith(f"wrote {tmp_path}/y.npz: {len(arrays)} images")
    packed = jax_lib.load_luminance(tmp_path / "y.npz")
    assert len(packed) == len(arrays) > 1
    for y, (_, image, gray) in zip(packed, arrays):
        np.testing.assert_array_equal(y, pipeline.hr_luminance(image, gray))
    with np.load(tmp_path / "y.npz") as npz:
        assert [str(n) for n in npz["names"]] == [f"skimage_train/{name}" for name, _, _ in arrays]
