"""Paired comparisons of two arms' per-question correctness: a two-way bootstrap over seeds and questions, Holm's
step-down correction over a family of comparisons, and the minimum difference such a comparison can detect.

An arm's results are a (seeds x questions) 0/1 matrix: row s is the fine-tuned student of seed s, column q the
same held-out question for every arm. Two arms are paired by both: a bootstrap replicate draws seeds and questions
with replacement, the same draw for both arms, so that the interval carries the variation between runs (seeds) and
between test questions that a rerun with other seeds and another test set would see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Comparison:
    arm: str
    reference: str
    difference: float  # mean accuracy of arm minus reference
    standard_error: float  # the bootstrap's standard deviation of the difference
    p_value: float  # two-sided, from the bootstrap
    seeds: int
    questions: int


def paired_bootstrap(arm: np.ndarray, reference: np.ndarray, replicates: int = 2000,
                     seed: int = 0) -> tuple[float, np.ndarray]:
    """The mean difference of two (seeds x questions) matrices and its bootstrap replicates."""
    if arm.shape != reference.shape or arm.ndim != 2:
        raise ValueError(f"expected two (seeds x questions) matrices of one shape, got {arm.shape} and "
                         f"{reference.shape}")
    difference = np.asarray(arm, dtype=np.float64) - np.asarray(reference, dtype=np.float64)
    n_seeds, n_questions = difference.shape
    rng = np.random.default_rng(seed)
    draws = np.empty(replicates)
    for replicate in range(replicates):
        seeds = rng.integers(n_seeds, size=n_seeds)
        questions = rng.integers(n_questions, size=n_questions)
        # mean over the drawn (seed, question) cells = mean over drawn seeds of each seed's drawn-question mean
        draws[replicate] = difference[seeds][:, questions].mean()
    return float(difference.mean()), draws


def compare_arms(name: str, arm: np.ndarray, reference_name: str, reference: np.ndarray,
                 replicates: int = 2000, seed: int = 0) -> tuple[Comparison, np.ndarray]:
    difference, draws = paired_bootstrap(arm, reference, replicates, seed)
    p_value = min(1.0, 2 * min(float((draws <= 0).mean()), float((draws >= 0).mean())))
    comparison = Comparison(name, reference_name, difference, float(draws.std(ddof=1)), p_value, *arm.shape)
    return comparison, draws


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order."""
    order = np.argsort(p_values, kind="stable")
    m = len(p_values)
    adjusted = np.empty(m)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted.tolist()


def holm_levels(p_values: Sequence[float], alpha: float) -> list[float]:
    """The level each comparison's interval is drawn at under Holm's procedure: alpha / (m - rank), rank 0 for the
    smallest p-value."""
    order = np.argsort(p_values, kind="stable")
    levels = np.empty(len(p_values))
    for rank, index in enumerate(order):
        levels[index] = alpha / (len(p_values) - rank)
    return levels.tolist()


def percentile_interval(draws: np.ndarray, level: float) -> tuple[float, float]:
    low, high = np.quantile(draws, [level / 2, 1 - level / 2])
    return float(low), float(high)


def minimum_detectable_difference(standard_error: float, level: float, power: float = 0.8) -> float:
    """The smallest true difference a two-sided test at `level` detects with `power`, given the comparison's
    standard error (normal approximation)."""
    return float((stats.norm.ppf(1 - level / 2) + stats.norm.ppf(power)) * standard_error)
