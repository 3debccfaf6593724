"""Benchmark runner: every image of every set at every scale through :mod:`cmsc_tf.eval.protocol`.

Flag-free library behind ``python -m training.evaluate``. A data folder holds
one subfolder per benchmark set with the HR images inside (any set name
works); sets that are absent are skipped with a message. Images are listed by
:func:`cmsc_tf.io.image_sets.list_images`; without a data folder the caller
evaluates the held-out photographs that
:func:`cmsc_tf.io.image_sets.write_embedded_benchmark` writes.
"""

import json
import math
import pathlib

import numpy as np
from tqdm import tqdm

from cmsc_tf.eval import paper_table3, protocol
from cmsc_tf.io import atomic, image_sets, images
from cmsc_tf.numerics import color, degradation
from cmsc_tf.numerics.rounding import matlab_uint8

DEFAULT_DATASETS = ("Set5", "Set14", "BSD100", "Urban100")
DEFAULT_SCALES = (2, 3, 4)
DEFAULT_METRICS = ("psnr", "ssim", "ifc")


def colour_prediction(hr_uint8, sr, scale):
    """The SR image for viewing: predicted luminance, bicubic Cb/Cr, as uint8.

    Grayscale images stay grayscale. The chroma goes through the same
    down/up-sampling as the luminance input.
    """
    sr = np.clip(sr, 0.0, 1.0)
    hr = degradation.modcrop(hr_uint8, scale)
    if hr.ndim == 2 or hr.shape[-1] <= 2:
        return matlab_uint8(sr * 255)
    ycbcr = color.rgb2ycbcr(hr[..., :3].astype(np.float64) / 255)
    chroma = degradation.degrade(ycbcr[..., 1:], scale)
    rgb = color.ycbcr2rgb(np.concatenate([sr[..., None], chroma], axis=-1))
    return matlab_uint8(rgb * 255)


def evaluate_set(predictor, image_paths, scale, metrics=DEFAULT_METRICS, save_dir=None, description=None):
    """Scores one set at one scale; returns its result record (means and per-image scores)."""
    scale = protocol.check_scale(scale)
    records, seconds = [], 0.0
    for path in tqdm(image_paths, desc=description, unit="image", leave=False):
        hr = images.read_image(path)
        try:
            scores, sr, elapsed = protocol.score_image(protocol.hr_luminance(hr, scale), scale, predictor, metrics)
        except ValueError as err:
            raise ValueError(f"{path} at x{scale}: {err}") from err
        seconds += elapsed
        records.append({"name": path.stem, **scores})
        if save_dir is not None:
            images.write_image(pathlib.Path(save_dir) / f"{path.stem}.png", colour_prediction(hr, sr, scale))
    means = {name: float(np.mean([record[name] for record in records])) for name in metrics}
    return {**means, "seconds_per_image": seconds / len(records), "images": records}


def evaluate(
    predictor,
    data_dir,
    datasets=DEFAULT_DATASETS,
    scales=DEFAULT_SCALES,
    metrics=DEFAULT_METRICS,
    save_images=None,
    log=print,
):
    """Evaluates a predictor on the benchmark sets of ``data_dir``.

    Args:
      predictor: callable ``x -> sr`` (see :mod:`cmsc_tf.deploy.loader`).
      data_dir: folder with one subfolder of HR images per set.
      datasets, scales, metrics: what to run; absent sets are skipped.
      save_images: optional folder; colour SR images go to
        ``save_images/<set>/x<scale>/<name>.png``.
      log: where messages about skipped sets go.

    Returns:
      A list of records ``{"dataset", "scale", <metric means>,
      "seconds_per_image", "images": [{"name", <metrics>}]}``.
    """
    data_dir = pathlib.Path(data_dir)
    if not data_dir.is_dir():
        raise ValueError(f"data directory not found: {data_dir}")
    scales = [protocol.check_scale(s) for s in scales]
    unknown = sorted(set(metrics) - set(protocol.METRICS))
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; choose from {sorted(protocol.METRICS)}.")
    results = []
    for dataset in datasets:
        folder = data_dir / dataset
        try:
            paths = image_sets.list_images(folder)
        except FileNotFoundError:
            log(f"Skipping {dataset}: no images in {folder}")
            continue
        for scale in scales:
            save_dir = None if save_images is None else pathlib.Path(save_images) / dataset / f"x{scale}"
            record = evaluate_set(predictor, paths, scale, metrics, save_dir, description=f"{dataset} x{scale}")
            results.append({"dataset": dataset, "scale": scale, **record})
    if not results:
        raise ValueError(f"none of the datasets {list(datasets)} has images under {data_dir}")
    return results


def format_table(results, metrics=DEFAULT_METRICS):
    """A Markdown table in the layout of Table III: one row per set and scale."""
    header = ["Dataset", "Scale"] + [name.upper() for name in metrics] + ["s/image"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for record in results:
        cells = [record["dataset"], f"x{record['scale']}"]
        cells += [f"{record[name]:.{paper_table3.DECIMALS[name]}f}" for name in metrics]
        cells.append(f"{record['seconds_per_image']:.4f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _json_safe(value):
    """Identical images have infinite PSNR; JSON has no infinity, so write the string "inf"."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def write_json(results, path):
    """Writes ``{"results": [...]}`` atomically."""
    text = json.dumps({"results": _json_safe(results)}, indent=2, allow_nan=False)
    atomic.write_text(path, text + "\n")
