"""Table III of Hu et al. (2018): the published scores, and a table that puts ours beside them.

The numbers are the paper's (``../shared/paper/cmsc_paper.txt``, Table III:
mean PSNR / SSIM / IFC on the luminance channel; ``tests/eval/test_paper_table3.py``
checks every entry against that text). Our measurements come from
``python -m training.evaluate --output_json=...`` or
:func:`cmsc_tf.eval.benchmark.evaluate`; :func:`comparison_table` renders both in
one Markdown table, one row per method, one column per set and scale.

```python
from cmsc_tf.eval import paper_table3
rows = [("Bicubic (paper)", paper_table3.paper_scores("Bicubic")),
        ("Bicubic (ours)", paper_table3.measured_scores(json.load(open("bicubic.json"))))]
print(paper_table3.comparison_table(rows))
```
"""

METHODS = ("Bicubic", "A+", "SelfExSR", "SRCNN", "FSRCNN", "VDSR", "DRCN", "LapSRN", "DRRN", "MemNet", "CMSC_SR", "CMSC")
DATASETS = ("Set5", "Set14", "BSD100", "Urban100")
SCALES = (2, 3, 4)
METRICS = ("psnr", "ssim", "ifc")
# Decimals the paper prints, used for every cell.
DECIMALS = {"psnr": 2, "ssim": 4, "ifc": 4}

# (dataset, scale, method, PSNR, SSIM, IFC), in the paper's order.
_ROWS = (
    ("Set5", 2, "Bicubic", 33.68, 0.9304, 6.2821),
    ("Set5", 2, "A+", 36.54, 0.9544, 8.4772),
    ("Set5", 2, "SelfExSR", 36.50, 0.9536, 7.8240),
    ("Set5", 2, "SRCNN", 36.66, 0.9542, 8.0356),
    ("Set5", 2, "FSRCNN", 36.98, 0.9556, 7.8118),
    ("Set5", 2, "VDSR", 37.53, 0.9587, 8.5801),
    ("Set5", 2, "DRCN", 37.63, 0.9588, 8.7828),
    ("Set5", 2, "LapSRN", 37.52, 0.9591, 9.0133),
    ("Set5", 2, "DRRN", 37.74, 0.9591, 8.6698),
    ("Set5", 2, "MemNet", 37.78, 0.9597, 8.8503),
    ("Set5", 2, "CMSC_SR", 37.76, 0.9600, 9.1463),
    ("Set5", 2, "CMSC", 37.89, 0.9605, 9.3922),
    ("Set5", 3, "Bicubic", 30.40, 0.8686, 3.6160),
    ("Set5", 3, "A+", 32.58, 0.9088, 4.9285),
    ("Set5", 3, "SelfExSR", 32.64, 0.9097, 4.7550),
    ("Set5", 3, "SRCNN", 32.75, 0.9090, 4.6582),
    ("Set5", 3, "FSRCNN", 33.16, 0.9140, 4.9640),
    ("Set5", 3, "VDSR", 33.66, 0.9213, 5.2029),
    ("Set5", 3, "DRCN", 33.82, 0.9226, 5.3363),
    ("Set5", 3, "LapSRN", 33.82, 0.9227, 5.1946),
    ("Set5", 3, "DRRN", 34.03, 0.9244, 5.3962),
    ("Set5", 3, "MemNet", 34.09, 0.9248, 5.5027),
    ("Set5", 3, "CMSC_SR", 34.10, 0.9254, 5.4914),
    ("Set5", 3, "CMSC", 34.24, 0.9266, 5.6612),
    ("Set5", 4, "Bicubic", 28.43, 0.8109, 2.3425),
    ("Set5", 4, "A+", 30.28, 0.8603, 3.2483),
    ("Set5", 4, "SelfExSR", 30.30, 0.8620, 3.1812),
    ("Set5", 4, "SRCNN", 30.48, 0.8628, 2.9910),
    ("Set5", 4, "FSRCNN", 30.70, 0.8657, 2.9862),
    ("Set5", 4, "VDSR", 31.35, 0.8838, 3.5419),
    ("Set5", 4, "DRCN", 31.53, 0.8854, 3.5426),
    ("Set5", 4, "LapSRN", 31.54, 0.8866, 3.5596),
    ("Set5", 4, "DRRN", 31.68, 0.8888, 3.7022),
    ("Set5", 4, "MemNet", 31.74, 0.8893, 3.7860),
    ("Set5", 4, "CMSC_SR", 31.77, 0.8903, 3.7789),
    ("Set5", 4, "CMSC", 31.91, 0.8923, 3.8758),
    ("Set14", 2, "Bicubic", 30.24, 0.8691, 6.3035),
    ("Set14", 2, "A+", 32.28, 0.9056, 8.1395),
    ("Set14", 2, "SelfExSR", 32.22, 0.9034, 7.5970),
    ("Set14", 2, "SRCNN", 32.45, 0.9067, 7.7844),
    ("Set14", 2, "FSRCNN", 32.62, 0.9087, 7.5656),
    ("Set14", 2, "VDSR", 33.05, 0.9127, 8.1594),
    ("Set14", 2, "DRCN", 33.06, 0.9121, 8.3700),
    ("Set14", 2, "LapSRN", 32.99, 0.9124, 8.5085),
    ("Set14", 2, "DRRN", 33.23, 0.9136, 8.3178),
    ("Set14", 2, "MemNet", 33.28, 0.9142, 8.4682),
    ("Set14", 2, "CMSC_SR", 33.29, 0.9148, 8.7113),
    ("Set14", 2, "CMSC", 33.41, 0.9153, 8.8932),
    ("Set14", 3, "Bicubic", 27.54, 0.7741, 3.5346),
    ("Set14", 3, "A+", 29.13, 0.8188, 4.5348),
    ("Set14", 3, "SelfExSR", 29.15, 0.8196, 4.3704),
    ("Set14", 3, "SRCNN", 29.29, 0.8215, 4.3377),
    ("Set14", 3, "FSRCNN", 29.42, 0.8242, 4.5494),
    ("Set14", 3, "VDSR", 29.78, 0.8318, 4.6906),
    ("Set14", 3, "DRCN", 29.77, 0.8314, 4.7816),
    ("Set14", 3, "LapSRN", 29.79, 0.8320, 4.6635),
    ("Set14", 3, "DRRN", 29.96, 0.8349, 4.8773),
    ("Set14", 3, "MemNet", 30.00, 0.8350, 4.9584),
    ("Set14", 3, "CMSC_SR", 30.00, 0.8355, 4.9726),
    ("Set14", 3, "CMSC", 30.09, 0.8371, 5.1019),
    ("Set14", 4, "Bicubic", 26.00, 0.7023, 2.2593),
    ("Set14", 4, "A+", 27.32, 0.7491, 2.9616),
    ("Set14", 4, "SelfExSR", 27.38, 0.7516, 2.8908),
    ("Set14", 4, "SRCNN", 27.50, 0.7513, 2.7506),
    ("Set14", 4, "FSRCNN", 27.59, 0.7535, 2.7068),
    ("Set14", 4, "VDSR", 28.02, 0.7678, 3.1065),
    ("Set14", 4, "DRCN", 28.03, 0.7673, 3.0978),
    ("Set14", 4, "LapSRN", 28.09, 0.7694, 3.1462),
    ("Set14", 4, "DRRN", 28.21, 0.7720, 3.2518),
    ("Set14", 4, "MemNet", 28.26, 0.7723, 3.3079),
    ("Set14", 4, "CMSC_SR", 28.27, 0.7733, 3.3261),
    ("Set14", 4, "CMSC", 28.35, 0.7751, 3.4056),
    ("BSD100", 2, "Bicubic", 29.56, 0.8435, 5.9201),
    ("BSD100", 2, "A+", 31.21, 0.8863, 7.3556),
    ("BSD100", 2, "SelfExSR", 31.17, 0.8853, 6.8356),
    ("BSD100", 2, "SRCNN", 31.36, 0.8879, 7.1260),
    ("BSD100", 2, "FSRCNN", 31.50, 0.8904, 6.8622),
    ("BSD100", 2, "VDSR", 31.90, 0.8960, 7.4942),
    ("BSD100", 2, "DRCN", 31.85, 0.8942, 7.5766),
    ("BSD100", 2, "LapSRN", 31.80, 0.8949, 7.7192),
    ("BSD100", 2, "DRRN", 32.05, 0.8973, 7.5128),
    ("BSD100", 2, "MemNet", 32.08, 0.8978, 7.6650),
    ("BSD100", 2, "CMSC_SR", 32.07, 0.8984, 7.9785),
    ("BSD100", 2, "CMSC", 32.15, 0.8992, 8.1380),
    ("BSD100", 3, "Bicubic", 27.21, 0.7389, 3.2339),
    ("BSD100", 3, "A+", 28.29, 0.7835, 3.9968),
    ("BSD100", 3, "SelfExSR", 28.29, 0.7840, 3.8003),
    ("BSD100", 3, "SRCNN", 28.41, 0.7863, 3.8435),
    ("BSD100", 3, "FSRCNN", 28.52, 0.7893, 4.0302),
    ("BSD100", 3, "VDSR", 28.83, 0.7976, 4.1514),
    ("BSD100", 3, "DRCN", 28.80, 0.7963, 4.1839),
    ("BSD100", 3, "LapSRN", 28.82, 0.7973, 4.0581),
    ("BSD100", 3, "DRRN", 28.95, 0.8004, 4.2350),
    ("BSD100", 3, "MemNet", 28.96, 0.8001, 4.3002),
    ("BSD100", 3, "CMSC_SR", 28.96, 0.8012, 4.3552),
    ("BSD100", 3, "CMSC", 29.01, 0.8024, 4.4427),
    ("BSD100", 4, "Bicubic", 25.96, 0.6678, 2.0210),
    ("BSD100", 4, "A+", 26.82, 0.7087, 2.5509),
    ("BSD100", 4, "SelfExSR", 26.84, 0.7106, 2.4601),
    ("BSD100", 4, "SRCNN", 26.90, 0.7103, 2.3961),
    ("BSD100", 4, "FSRCNN", 26.96, 0.7128, 2.3297),
    ("BSD100", 4, "VDSR", 27.29, 0.7252, 2.6785),
    ("BSD100", 4, "DRCN", 27.24, 0.7233, 2.6328),
    ("BSD100", 4, "LapSRN", 27.32, 0.7264, 2.6771),
    ("BSD100", 4, "DRRN", 27.38, 0.7284, 2.7459),
    ("BSD100", 4, "MemNet", 27.40, 0.7281, 2.7784),
    ("BSD100", 4, "CMSC_SR", 27.41, 0.7296, 2.8243),
    ("BSD100", 4, "CMSC", 27.46, 0.7308, 2.8767),
    ("Urban100", 2, "Bicubic", 26.88, 0.8405, 6.6493),
    ("Urban100", 2, "A+", 29.20, 0.8938, 8.4201),
    ("Urban100", 2, "SelfExSR", 29.52, 0.8965, 7.9437),
    ("Urban100", 2, "SRCNN", 29.51, 0.8946, 7.9958),
    ("Urban100", 2, "FSRCNN", 29.85, 0.9009, 8.0255),
    ("Urban100", 2, "VDSR", 30.77, 0.9141, 8.6288),
    ("Urban100", 2, "DRCN", 30.76, 0.9133, 8.9590),
    ("Urban100", 2, "LapSRN", 30.41, 0.9101, 8.9227),
    ("Urban100", 2, "DRRN", 31.23, 0.9188, 8.9200),
    ("Urban100", 2, "MemNet", 31.31, 0.9195, 9.1221),
    ("Urban100", 2, "CMSC_SR", 31.21, 0.9191, 9.4034),
    ("Urban100", 2, "CMSC", 31.47, 0.9220, 9.6666),
    ("Urban100", 3, "Bicubic", 24.46, 0.7349, 3.7759),
    ("Urban100", 3, "A+", 26.03, 0.7973, 4.8631),
    ("Urban100", 3, "SelfExSR", 26.46, 0.8090, 4.8397),
    ("Urban100", 3, "SRCNN", 26.24, 0.7991, 4.5790),
    ("Urban100", 3, "FSRCNN", 26.41, 0.8064, 4.8419),
    ("Urban100", 3, "VDSR", 27.14, 0.8279, 5.1594),
    ("Urban100", 3, "DRCN", 27.15, 0.8277, 5.3145),
    ("Urban100", 3, "LapSRN", 27.07, 0.8271, 5.1649),
    ("Urban100", 3, "DRRN", 27.53, 0.8377, 5.4496),
    ("Urban100", 3, "MemNet", 27.56, 0.8376, 5.5727),
    ("Urban100", 3, "CMSC_SR", 27.52, 0.8369, 5.5974),
    ("Urban100", 3, "CMSC", 27.69, 0.8411, 5.7819),
    ("Urban100", 4, "Bicubic", 23.14, 0.6574, 2.4459),
    ("Urban100", 4, "A+", 24.32, 0.7183, 3.2080),
    ("Urban100", 4, "SelfExSR", 24.80, 0.7377, 3.3148),
    ("Urban100", 4, "SRCNN", 24.52, 0.7226, 2.9632),
    ("Urban100", 4, "FSRCNN", 24.60, 0.7258, 2.8945),
    ("Urban100", 4, "VDSR", 25.18, 0.7525, 3.4623),
    ("Urban100", 4, "DRCN", 25.14, 0.7511, 3.4654),
    ("Urban100", 4, "LapSRN", 25.21, 0.7553, 3.5305),
    ("Urban100", 4, "DRRN", 25.44, 0.7638, 3.6741),
    ("Urban100", 4, "MemNet", 25.50, 0.7630, 3.7860),
    ("Urban100", 4, "CMSC_SR", 25.49, 0.7637, 3.8086),
    ("Urban100", 4, "CMSC", 25.64, 0.7692, 3.9437),
)


def paper_scores(method):
    """``{(dataset, scale): {"psnr", "ssim", "ifc"}}`` of one method of Table III."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; Table III has {', '.join(METHODS)}")
    return {
        (dataset, scale): dict(zip(METRICS, values))
        for dataset, scale, name, *values in _ROWS
        if name == method
    }


def measured_scores(results):
    """The same mapping from evaluation results (the list, or the JSON's ``{"results": [...]}``)."""
    records = results["results"] if isinstance(results, dict) else results
    return {
        (record["dataset"], int(record["scale"])): {m: float(record[m]) for m in METRICS if m in record}
        for record in records
    }


def _cell(scores, metrics):
    if scores is None or not all(m in scores for m in metrics):
        return "-"
    return " / ".join(f"{scores[m]:.{DECIMALS[m]}f}" for m in metrics)


def comparison_table(rows, metrics=METRICS, columns=None):
    """A Markdown table: one row per ``(label, scores)``, a column per set and scale.

    The columns are ``columns`` (``(dataset, scale)`` pairs; default: every
    pair of the rows) in the order of Table III, sets it does not have last,
    by name. A row without a pair, or without one of ``metrics`` there,
    shows ``-``.
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; choose from {list(METRICS)}")
    if not rows:
        raise ValueError("comparison_table needs at least one row")
    keys = set(columns) if columns is not None else {key for _, scores in rows for key in scores}

    def order(key):
        dataset, scale = key
        known = dataset in DATASETS
        return (not known, DATASETS.index(dataset) if known else 0, dataset, scale)

    columns = sorted(keys, key=order)
    header = ["Method"] + [f"{dataset} x{scale}" for dataset, scale in columns]
    lines = [
        f"Cells: {' / '.join(m.upper() for m in metrics)}",
        "",
        "| " + " | ".join(header) + " |",
        "|" + " --- |" * len(header),
    ]
    for label, scores in rows:
        cells = [label] + [_cell(scores.get(key), metrics) for key in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
