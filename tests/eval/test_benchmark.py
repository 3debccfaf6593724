"""The benchmark runner: Table III's Bicubic rows, the public VDSR, the CLI and model loading."""

import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import cmsc_tf
from cmsc_tf.deploy import loader
from cmsc_tf.eval import benchmark, protocol
from cmsc_tf.io import image_sets

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]

# Table III of the paper, Bicubic rows (Set5 and BSD100 also in protocol.md):
# (set, scale) -> (PSNR, SSIM, IFC).
BICUBIC_TABLE_III = {
    ("Set14", 2): (30.24, 0.8691, 6.3035),
    ("Set14", 3): (27.54, 0.7741, 3.5346),
    ("Set14", 4): (26.00, 0.7023, 2.2593),
    ("Set5", 2): (33.68, 0.9304, 6.2821),
    ("Set5", 3): (30.40, 0.8686, 3.6160),
    ("Set5", 4): (28.43, 0.8109, 2.3425),
    ("BSD100", 2): (29.56, 0.8435, 5.9201),
    ("BSD100", 3): (27.21, 0.7389, 3.2339),
    ("BSD100", 4): (25.96, 0.6678, 2.0210),
}
# protocol.md's bars; the PSNR bar is widened by the table's own rounding.
BARS = {"psnr": 0.01 + 0.005, "ssim": 0.0005, "ifc": 0.001}


def _check_bicubic_rows(shared_dir, dataset):
    # The identity predictor through benchmark.evaluate: the code path models take.
    results = benchmark.evaluate(protocol.bicubic_predictor, shared_dir / "datasets" / "benchmark", [dataset])
    assert [(r["dataset"], r["scale"]) for r in results] == [(dataset, 2), (dataset, 3), (dataset, 4)]
    for record in results:
        expected = dict(zip(("psnr", "ssim", "ifc"), BICUBIC_TABLE_III[dataset, record["scale"]]))
        for name, value in expected.items():
            assert abs(record[name] - value) <= BARS[name], (dataset, record["scale"], name, record[name], value)


def test_bicubic_rows_of_table_iii_set5(shared_dir):
    _check_bicubic_rows(shared_dir, "Set5")


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["Set14", "BSD100"])
def test_bicubic_rows_of_table_iii_other_sets(shared_dir, dataset):
    # Set14 holds the grayscale bridge.png: the luminance rule is tested here.
    _check_bicubic_rows(shared_dir, dataset)


def _run_cli(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [sys.executable, "-m", "training.evaluate", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )


@pytest.mark.slow
def test_public_vdsr_scores_37_62_on_set5_x2_through_the_cli(shared_dir, tmp_path):
    model = cmsc_tf.load_vdsr_weights(
        cmsc_tf.build_model("vdsr"), str(shared_dir / "reference_models" / "vdsr_291_x234.npz")
    )
    model_path = tmp_path / "vdsr.keras"
    model.save(model_path)
    output = tmp_path / "vdsr.json"
    run = _run_cli(
        f"--model={model_path}",
        f"--data_dir={shared_dir / 'datasets' / 'benchmark'}",
        "--datasets=Set5",
        "--scales=2",
        "--metrics=psnr",
        f"--output_json={output}",
        "--compare=Bicubic,VDSR",
    )
    assert run.returncode == 0, run.stderr[-3000:]
    (record,) = json.loads(output.read_text())["results"]
    assert record["dataset"] == "Set5" and record["scale"] == 2 and len(record["images"]) == 5
    # datasets/README.md: 37.62 dB with this protocol.
    assert record["psnr"] == pytest.approx(37.62, abs=0.01)
    assert "| Set5 | x2 | 37.6" in run.stdout
    # --compare: the paper's rows (Table III) beside the measured one, same column.
    assert "| Method | Set5 x2 |" in run.stdout
    assert "| Bicubic (paper) | 33.68 |" in run.stdout and "| VDSR (paper) | 37.53 |" in run.stdout
    assert f"| {model_path} (measured) | 37.62 |" in run.stdout


def _tiny_benchmark(root):
    """A set called 'Mine' with one RGB and one grayscale image."""
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (20, 22, 3)).astype(np.float64)
    rgb = np.clip(np.round(cmsc_tf.numerics.imresize_np.imresize_np(coarse, output_shape=(81, 90))), 0, 255).astype(np.uint8)
    (root / "Mine").mkdir(parents=True)
    Image.fromarray(rgb).save(root / "Mine" / "colour.png")
    Image.fromarray(rgb[..., 1]).save(root / "Mine" / "gray.png")
    return rgb


def test_evaluate_any_set_name_json_and_saved_images(tmp_path):
    rgb = _tiny_benchmark(tmp_path / "data")
    messages = []
    results = benchmark.evaluate(
        protocol.bicubic_predictor,
        tmp_path / "data",
        datasets=["Nope", "Mine"],
        scales=[3],
        metrics=["psnr", "ssim", "ifc"],
        save_images=tmp_path / "sr",
        log=messages.append,
    )
    assert any("Skipping Nope" in m for m in messages)
    (record,) = results
    assert [image["name"] for image in record["images"]] == ["colour", "gray"]
    # The mean is the mean of per-image scores, each scored as the protocol says.
    y = protocol.hr_luminance(rgb, 3)
    direct, _, _ = protocol.score_image(y, 3, protocol.bicubic_predictor, ("psnr", "ssim", "ifc"))
    assert record["images"][0]["name"] == "colour"
    for name, value in direct.items():
        assert record["images"][0][name] == pytest.approx(value, rel=1e-12)
    assert record["psnr"] == pytest.approx(np.mean([i["psnr"] for i in record["images"]]), abs=1e-12)

    colour = np.asarray(Image.open(tmp_path / "sr" / "Mine" / "x3" / "colour.png"))
    gray = np.asarray(Image.open(tmp_path / "sr" / "Mine" / "x3" / "gray.png"))
    assert colour.shape == (81, 90, 3) and gray.shape == (81, 90)
    # Saved luminance = the prediction (up to uint8 rounding of R, G, B);
    # saved chroma = bicubic x3 of the HR chroma.
    saved = cmsc_tf.numerics.color.rgb2ycbcr(colour / 255)
    hr_ycbcr = cmsc_tf.numerics.color.rgb2ycbcr(rgb / 255)
    bicubic = cmsc_tf.numerics.imresize_np.imresize_np(cmsc_tf.numerics.imresize_np.imresize_np(hr_ycbcr, 1 / 3), 3)
    _, sr, _ = protocol.score_image(protocol.hr_luminance(rgb, 3), 3, protocol.bicubic_predictor, ())
    # Pixels whose R, G or B left [0, 1] were clipped: check the bulk.
    assert np.mean(np.abs(saved[..., 0] - sr) < 1.5 / 255) > 0.95
    assert np.mean(np.abs(saved[..., 1:] - bicubic[..., 1:]) < 3 / 255) > 0.95
    np.testing.assert_array_equal(gray, np.floor(np.clip(protocol.score_image(
        protocol.hr_luminance(rgb[..., 1], 3), 3, protocol.bicubic_predictor, ())[1], 0, 1) * 255 + 0.5))
    assert not list((tmp_path / "sr").rglob(".*"))  # no temporary files left

    benchmark.write_json(results, tmp_path / "out.json")
    loaded = json.loads((tmp_path / "out.json").read_text())
    assert loaded["results"][0]["ssim"] == record["ssim"]
    assert "| Mine | x3 |" in benchmark.format_table(results)


def test_infinite_psnr_is_written_as_a_json_string(tmp_path):
    _tiny_benchmark(tmp_path / "data")
    results = benchmark.evaluate(
        lambda x: x, tmp_path / "data", ["Mine"], [2], ["psnr"], log=lambda m: None
    )
    # Make one image perfect by scoring the HR image against itself.
    results[0]["images"][0]["psnr"] = protocol.METRICS["psnr"](np.ones((3, 3)), np.ones((3, 3)))
    benchmark.write_json(results, tmp_path / "out.json")
    loaded = json.loads((tmp_path / "out.json").read_text())
    assert loaded["results"][0]["images"][0]["psnr"] == "inf"


def test_no_images_anywhere_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="none of the datasets"):
        benchmark.evaluate(protocol.bicubic_predictor, tmp_path, ["Set5"], log=lambda m: None)
    with pytest.raises(ValueError, match="data directory not found"):
        benchmark.evaluate(protocol.bicubic_predictor, tmp_path / "missing")


def _tiny_model():
    inputs = keras.Input((None, None, 1))
    residual = keras.layers.Conv2D(1, 3, padding="same", kernel_initializer="glorot_uniform")(inputs)
    return keras.Model(inputs, keras.layers.Add(name="final")([inputs, residual]))


def test_saved_model_and_keras_predictors_agree_and_clip(tmp_path):
    model = _tiny_model()
    model.get_layer(index=1).kernel.assign(np.full((3, 3, 1, 1), 0.5, np.float32))  # pushes values above 1
    keras_path = tmp_path / "tiny.keras"
    model.save(keras_path)

    module = tf.Module()
    module.model = model
    module.luminance = tf.function(
        lambda image: {"final": model(image, training=False)},
        input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32, name="image")],
    )
    saved_dir = tmp_path / "saved"
    tf.saved_model.save(module, str(saved_dir), signatures={"luminance": module.luminance})

    x = np.random.default_rng(0).uniform(size=(17, 23))
    expected = np.clip(model(x[None, ..., None].astype(np.float32)).numpy()[0, ..., 0], 0, 1)
    assert expected.max() == 1.0  # the clip is exercised
    for spec in (str(keras_path), str(saved_dir)):
        np.testing.assert_allclose(loader.load_predictor(spec)(x), expected, atol=1e-6)
    from cmsc_tf.deploy import tflite

    tflite_path = tflite.save(model, tmp_path / "tiny.tflite", "float32")
    np.testing.assert_allclose(loader.load_predictor(str(tflite_path))(x), expected, atol=1e-5)


def test_bad_model_specs_get_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="must be 'bicubic'"):
        loader.load_predictor("vdsr.h5")
    with pytest.raises(FileNotFoundError):
        loader.load_predictor(str(tmp_path / "missing.keras"))
    with pytest.raises(FileNotFoundError, match="missing.tflite"):
        loader.load_predictor(str(tmp_path / "missing.tflite"))
    with pytest.raises(ValueError, match="not a SavedModel"):
        loader.load_predictor(str(tmp_path))
    damaged = tmp_path / "damaged.keras"
    damaged.write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(ValueError, match=f"{damaged}: not a valid .keras file"):  # not "File not found"
        loader.load_predictor(str(damaged))


def test_cli_usage_errors_are_one_line_messages(tmp_path):
    run = _run_cli("--model=nonsense.txt", f"--data_dir={tmp_path}")
    assert run.returncode != 0
    assert "must be 'bicubic'" in run.stderr and "Traceback" not in run.stderr
    # An unknown --compare method is refused before the model is even loaded.
    run = _run_cli("--model=missing.keras", f"--data_dir={tmp_path}", "--compare=Bicubic,srcnn")
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert "--compare: unknown methods ['srcnn']" in run.stderr and "not found" not in run.stderr


def test_unwritable_outputs_are_refused_up_front_in_one_line(tmp_path):
    """Before the model is loaded (a missing one would be named otherwise), exit code 2."""
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    for flag, path, message in [
        ("--output_json", tmp_path, f"{tmp_path} is a folder, not a file"),
        ("--output_json", blocker / "out.json", f"{blocker} is not a folder"),
        ("--save_images", blocker, f"{blocker} is not a folder"),
    ]:
        run = _run_cli("--model=missing.keras", f"--data_dir={tmp_path}", f"{flag}={path}")
        assert run.returncode == 2, run.stderr
        assert run.stderr.strip().splitlines()[-1] == f"training.evaluate: error: {flag}={path}: {message}"
        assert "Traceback" not in run.stderr


def test_saved_model_base_folder_resolves_to_its_newest_version():
    """`savedmodels/vdsr` (TF-Serving's base path) names the same model as `savedmodels/vdsr/1`."""
    base = REPO_ROOT / "savedmodels" / "vdsr"
    x = np.random.default_rng(0).uniform(size=(12, 9))
    np.testing.assert_array_equal(loader.load_predictor(str(base))(x),
                                  loader.load_predictor(str(base / "1"))(x))


def test_embedded_default_set_is_the_held_out_skimage_photographs(tmp_path):
    """The bicubic score of skimage.data's astronaut, chelsea and coins, worked out here as
    protocol.md says: MATLAB's rgb2ycbcr Y by its formula, rounded (coins is gray: kept as is),
    modcrop, MATLAB bicubic down and up (imresize_np, checked against MATLAB's outputs in
    tests/numerics), 4 pixels shaved, PSNR on 0..255."""
    import skimage.data

    folder = image_sets.write_embedded_benchmark(tmp_path)
    (record,) = benchmark.evaluate(protocol.bicubic_predictor, folder, [image_sets.EMBEDDED_SET], [4], ["psnr"])
    assert [image["name"] for image in record["images"]] == ["astronaut", "chelsea", "coins"]
    expected = []
    for name in ("astronaut", "chelsea", "coins"):
        image = getattr(skimage.data, name)().astype(np.float64)
        if image.ndim == 3:  # summed as MATLAB's imlincomb does, term by term, then the offset
            r, g, b = (image[..., c] for c in range(3))
            image = np.floor(65.481 / 255 * r + 128.553 / 255 * g + 24.966 / 255 * b + 16 + 0.5)
        y = image[:image.shape[0] // 4 * 4, :image.shape[1] // 4 * 4] / 255
        bicubic = cmsc_tf.numerics.imresize_np.imresize_np(cmsc_tf.numerics.imresize_np.imresize_np(y, 0.25), 4)
        error = (y - bicubic)[4:-4, 4:-4] * 255
        expected.append(10 * np.log10(255**2 / np.mean(error**2)))
    assert [image["psnr"] for image in record["images"]] == pytest.approx(expected, abs=1e-9)
    assert record["psnr"] == pytest.approx(np.mean(expected), abs=1e-9)
