"""Normalising acquisition rewards over a batch and combining them with the weights from params.yaml."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def normalise(values: np.ndarray, method: str) -> np.ndarray:
    """none | minmax (to [0, 1]) | zscore | rank (to [0, 1], tied values share their average rank). minmax and
    zscore map a constant batch to 0."""
    values = np.asarray(values, dtype=np.float64)
    if method == "none" or len(values) == 0:
        return values
    if method == "minmax":
        spread = values.max() - values.min()
        return (values - values.min()) / spread if spread > 0 else np.zeros_like(values)
    if method == "zscore":
        std = values.std()
        return (values - values.mean()) / std if std > 0 else np.zeros_like(values)
    if method == "rank":
        from scipy.stats import rankdata

        return (rankdata(values) - 1) / (len(values) - 1) if len(values) > 1 else np.zeros_like(values)
    raise ValueError(f"normalisation: expected none, minmax, zscore or rank, got {method!r}")


def combine(scores: Mapping[str, np.ndarray], weights: Mapping[str, float], method: str) -> np.ndarray:
    """sum_i weight_i * normalise(score_i); `scores` must hold every reward with a non-zero weight. No weight at all
    (the format-only baseline) gives zeros."""
    missing = [name for name, weight in weights.items() if weight and name not in scores]
    if missing:
        raise ValueError(f"combine: no scores for weighted rewards {missing}")
    active = [name for name, weight in weights.items() if weight]
    total = np.zeros(len(next(iter(scores.values()))) if scores else 0, dtype=np.float64)
    for name in active:
        total += weights[name] * normalise(scores[name], method)
    return total


def combined_bounds(weights: Mapping[str, float], method: str,
                    ranges: Mapping[str, tuple[float | None, float | None]]) -> tuple[float | None, float | None]:
    """The range a combined reward can take (None: unbounded on that side), for the quality gates."""
    if method == "zscore":
        return None, None
    low: float | None = 0.0
    high: float | None = 0.0
    for name, weight in weights.items():
        if not weight:
            continue
        r_low, r_high = (0.0, 1.0) if method in ("minmax", "rank") else ranges[name]
        if weight < 0:
            r_low, r_high = r_high, r_low
        low = None if low is None or r_low is None else low + weight * r_low
        high = None if high is None or r_high is None else high + weight * r_high
    return low, high
