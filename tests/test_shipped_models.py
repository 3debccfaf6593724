"""The models shipped in savedmodels/: the default compact CMSC and the full CMSC against the paper's numbers.

Independent truth: the published SRCNN and Bicubic rows of Table III
(`cmsc_tf.paper_table3`), scored with the evaluation protocol on Set5.
"""

import json
import pathlib

import numpy as np
import pytest

from cmsc_tf import cli, evaluation, paper_table3, predictors, protocol

REPO = pathlib.Path(__file__).resolve().parents[1]
SAVEDMODELS = REPO / "savedmodels"
SCALES = (2, 3, 4)


def set5_psnr(spec, benchmark_dir):
    results = evaluation.evaluate(predictors.load_predictor(str(spec)), benchmark_dir, datasets=["Set5"],
                                  scales=SCALES, metrics=["psnr"], log=lambda message: None)
    return {r["scale"]: r["psnr"] for r in results}


@pytest.fixture(scope="module")
def benchmark_dir(shared_dir):
    return shared_dir / "datasets" / "benchmark"


@pytest.fixture(scope="module")
def compact_psnr(benchmark_dir):
    return set5_psnr(REPO / cli.DEFAULT_MODEL, benchmark_dir)


def test_default_model_is_the_committed_compact_cmsc():
    saved_model = REPO / cli.DEFAULT_MODEL
    assert (saved_model / "saved_model.pb").is_file()
    assert cli.available_model_path() == saved_model
    assert (SAVEDMODELS / "cmsc_compact.keras").is_file()
    assert (SAVEDMODELS / "cmsc_compact_float16.tflite").is_file()


def test_compact_cmsc_is_well_above_bicubic_on_set5_at_every_scale(compact_psnr):
    bicubic = paper_table3.paper_scores("Bicubic")
    for scale in SCALES:
        assert compact_psnr[scale] > bicubic[("Set5", scale)]["psnr"] + 1.5, (scale, compact_psnr)


@pytest.mark.xfail(strict=True, reason="issue 6's target for the CPU-trained compact model is not reached: "
                   "Set5 35.95 / 32.43 / 30.43 dB against SRCNN's 36.66 / 32.75 / 30.48 (docs/results.md; "
                   "the GPU-trained full CMSC reaches it); strict, so a compact model that reaches it "
                   "turns this red until the marker is removed")
def test_compact_cmsc_beats_srcnn_on_set5_at_every_scale(compact_psnr):
    srcnn = paper_table3.paper_scores("SRCNN")
    for scale in SCALES:
        assert compact_psnr[scale] > srcnn[("Set5", scale)]["psnr"], (scale, compact_psnr)


@pytest.mark.parametrize("name", ["cmsc_compact.keras", "cmsc_compact_float16.tflite"])
def test_other_exports_of_the_compact_cmsc_score_the_same(name, compact_psnr, benchmark_dir):
    other = set5_psnr(SAVEDMODELS / name, benchmark_dir)
    for scale in SCALES:
        assert abs(other[scale] - compact_psnr[scale]) < 0.01, (name, scale, other, compact_psnr)


# ----------------------------------------------------------------------------
# The full CMSC (S=3, M=5, 64 features), trained on a lent GPU (docs/results.md).

FULL = SAVEDMODELS / "cmsc_full" / "1"


@pytest.fixture(scope="module")
def full_psnr(benchmark_dir):
    return set5_psnr(FULL, benchmark_dir)


def test_full_cmsc_beats_the_compact_one_on_set5_at_every_scale(full_psnr, compact_psnr):
    # The condition under which issue 6 ships it; the margin is well above the noise of one run.
    for scale in SCALES:
        assert full_psnr[scale] > compact_psnr[scale] + 0.2, (scale, full_psnr, compact_psnr)


def test_full_cmsc_beats_srcnn_on_set5_at_every_scale(full_psnr):
    srcnn = paper_table3.paper_scores("SRCNN")
    for scale in SCALES:
        assert full_psnr[scale] > srcnn[("Set5", scale)]["psnr"], (scale, full_psnr)


def test_full_cmsc_scores_what_the_docs_say(full_psnr):
    # docs/cmsc_full_benchmark.json is training.evaluate's output behind the docs' tables;
    # the Set5 PSNR triple the docs print must be its rounding.
    results = json.loads((REPO / "docs" / "cmsc_full_benchmark.json").read_text())["results"]
    recorded = {r["scale"]: r["psnr"] for r in results if r["dataset"] == "Set5"}
    for scale in SCALES:
        assert abs(full_psnr[scale] - recorded[scale]) < 0.005, (scale, full_psnr, recorded)
    triple = " / ".join(f"{recorded[scale]:.2f}" for scale in SCALES)
    for doc in ("README.md", "docs/deployment.md", "docs/results.md"):
        assert triple in (REPO / doc).read_text(), doc


def test_the_keras_export_of_the_full_cmsc_computes_the_same_network(shared_dir):
    # One Set5 image at x3 (the whole set would cost another minute of CI).
    y = protocol.hr_luminance(protocol.read_image(shared_dir / "datasets/benchmark/Set5/butterfly.png"), 3)
    x = protocol.upscale(protocol.downscale(y, 3), 3)
    reference = predictors.load_predictor(str(FULL))(x)
    other = predictors.load_predictor(str(SAVEDMODELS / "cmsc_full.keras"))(x)
    assert np.abs(other - reference).max() < 1e-5
