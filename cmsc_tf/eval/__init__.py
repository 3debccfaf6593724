"""The evaluation protocol of the paper's Table III: per-image scoring, metrics, the benchmark runner, the paper's numbers."""
