"""The models shipped in savedmodels/: the default compact CMSC against the paper's numbers.

Independent truth: the published SRCNN and Bicubic rows of Table III
(`cmsc_tf.paper_table3`), scored with the evaluation protocol on Set5.
"""

import pathlib

import pytest

from cmsc_tf import cli, evaluation, paper_table3, predictors

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


@pytest.mark.xfail(strict=True, reason="issue 6's target is not reached yet: Set5 35.95 / 32.43 / 30.43 dB "
                   "against SRCNN's 36.66 / 32.75 / 30.48 (docs/results.md); strict, so a model that "
                   "reaches it turns this red until the marker is removed")
def test_compact_cmsc_beats_srcnn_on_set5_at_every_scale(compact_psnr):
    srcnn = paper_table3.paper_scores("SRCNN")
    for scale in SCALES:
        assert compact_psnr[scale] > srcnn[("Set5", scale)]["psnr"], (scale, compact_psnr)


@pytest.mark.parametrize("name", ["cmsc_compact.keras", "cmsc_compact_float16.tflite"])
def test_other_exports_of_the_compact_cmsc_score_the_same(name, compact_psnr, benchmark_dir):
    other = set5_psnr(SAVEDMODELS / name, benchmark_dir)
    for scale in SCALES:
        assert abs(other[scale] - compact_psnr[scale]) < 0.01, (name, scale, other, compact_psnr)
