"""The statistics of a comparison's results: per-run and per-arm tables, paired differences over seeds, the
primary comparisons (a paired two-way bootstrap, Holm-corrected) and the GRPO curves averaged over seeds."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from acqsynth import artifacts, significance
from acqsynth.comparison.runs import run_dir
from acqsynth.config import Layout, PipelineConfig

def mean_ci95(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% t-interval (nan with fewer than two values)."""
    from scipy import stats

    array = np.asarray(values, dtype=np.float64)
    if len(array) < 2:
        return float(array.mean()) if len(array) else float("nan"), float("nan")
    return float(array.mean()), float(stats.t.ppf(0.975, len(array) - 1) * array.std(ddof=1) / np.sqrt(len(array)))


def results_table(results: list[dict[str, Any]], domain: str) -> pd.DataFrame:
    """One row per (arm, seed): accuracies, forgetting, verification rate and data diversity."""
    rows = []
    for result in results:
        evaluation = result["metrics"].get("evaluate")
        if evaluation is None:
            continue
        verify = result["metrics"].get("verify", {})
        data = result.get("data") or {}
        row = {"group": result["group"], "arm": result["arm"], "seed": result["seed"],
               "before": evaluation["in_domain"]["before_accuracy"],
               "accuracy": evaluation["in_domain"]["after_accuracy"],
               "verified_rate": verify.get("verified_rate"), "n_data": data.get("n"),
               "embedding_diversity": data.get("embedding_diversity"),
               "distinct_4grams": data.get("distinct_4grams"), "copy_rate": verify.get("copy_rate"),
               "reference_confirmed_rate": verify.get("reference_confirmed_rate"),
               "difficulty_matches_seed_rate": verify.get("difficulty_matches_seed_rate"),
               "informative_group_rate": result["metrics"].get("policy_update", {}).get("informative_group_rate")}
        row |= {f"difficulty_{kind}": share for kind, share in (data.get("difficulty_mix") or {}).items()}
        for kind, values in evaluation["in_domain"].get("by_difficulty", {}).items():
            row |= {f"before_{kind}": values["before_accuracy"], f"accuracy_{kind}": values["after_accuracy"]}
        for other, values in evaluation["forgetting"].items():
            row[f"forgetting_{other}"] = values["drop"]
        rows.append(row)
    return pd.DataFrame(rows)


def paired_difference(table: pd.DataFrame, arm: str, reference: str) -> tuple[float, float, int]:
    """Mean and CI95 half-width over seeds of arm's accuracy minus reference's at the same seed, and the number of
    pairs (NaN, NaN, 0 without any)."""
    ref = table[table["arm"] == reference].set_index("seed")["accuracy"]
    group = table[table["arm"] == arm]
    paired = [acc - ref[seed] for seed, acc in zip(group["seed"], group["accuracy"]) if seed in ref.index]
    if not paired or arm == reference:
        return float("nan"), float("nan"), 0
    return (*mean_ci95(paired), len(paired))


def summary_table(table: pd.DataFrame, reference: str = "original") -> pd.DataFrame:
    """Per arm: mean and CI95 over seeds of accuracy, and of the paired (same seed) difference from `reference`."""
    forgetting = [column for column in table.columns if column.startswith("forgetting_")]
    rows = []
    for arm, group in table.groupby("arm", sort=False):
        accuracy, accuracy_half = mean_ci95(list(group["accuracy"]))
        diff, diff_half, _ = paired_difference(table, arm, reference)
        row = {"arm": arm, "seeds": len(group), "accuracy": accuracy, "accuracy_ci95": accuracy_half,
               "diff_vs_original": diff, "diff_ci95": diff_half}
        for column in forgetting:
            row[column] = float(group[column].mean())
        for column in ("verified_rate", "n_data", "embedding_diversity", "distinct_4grams"):
            values = group[column].dropna()
            row[column] = float(values.mean()) if len(values) else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)
SUMMARY_REFERENCES = ("original", "rejection_sampling", "random_pool")


def summary_json(table: pd.DataFrame) -> dict[str, Any]:
    """summary.json: per arm the mean accuracy and its CI95 over seeds, n, and the paired difference from each of
    SUMMARY_REFERENCES with its CI95 and the number of pairs (null where there is none)."""

    def number(value: float) -> float | None:
        return None if math.isnan(value) else round(float(value), 6)

    arms_summary = {}
    for arm, group in table.groupby("arm", sort=False):
        accuracy, half = mean_ci95(list(group["accuracy"]))
        differences = {}
        for reference in SUMMARY_REFERENCES:
            diff, diff_half, pairs = paired_difference(table, arm, reference)
            differences[reference] = {"mean": number(diff), "ci95": number(diff_half), "n": pairs}
        arms_summary[arm] = {"accuracy": {"mean": number(accuracy), "ci95": number(half)}, "n": len(group),
                             "difference_from": differences}
    return {"metric": "in-domain accuracy (fraction)", "interval": "95% t-interval over seeds; paired by seed",
            "arms": arms_summary}
PRIMARY_REFERENCES = ("original", "rejection_sampling", "random_pool", "verify_only")


def correctness_matrix(root: Path, config: PipelineConfig, arm: str, seeds: Sequence[int]) -> np.ndarray | None:
    """(seeds x questions) 0/1: whether the fine-tuned student of each seed answers each in-domain eval question,
    questions in id order; None if a run has no predictions."""
    rows = []
    for seed in seeds:
        path = Layout(run_dir(root, config, arm, seed)).predictions
        if not path.is_file():
            return None
        frame = artifacts.read_table(path)
        after = frame[(frame["student"] == "after") & (frame["domain"] == config.domain)].sort_values("id")
        rows.append(after["correct"].to_numpy(dtype=np.float64))
    return np.stack(rows) if rows and len({len(row) for row in rows}) == 1 else None


def primary_comparisons(root: Path, config: PipelineConfig, table: pd.DataFrame,
                        alpha: float = 0.05) -> list[dict[str, Any]]:
    """Each acquisition arm against each of PRIMARY_REFERENCES that ran, over their common seeds: the paired
    two-way bootstrap (acqsynth.significance), Holm-corrected over the whole family, with the minimum difference
    each could detect at its Holm level with 80% power."""
    names = set(table["arm"])
    found = []
    for arm in sorted(name for name in names if name.startswith("acqsyn_")):
        for reference in (name for name in PRIMARY_REFERENCES if name in names):
            seeds = sorted(set(table[table["arm"] == arm]["seed"]) & set(table[table["arm"] == reference]["seed"]))
            a, b = (correctness_matrix(root, config, name, seeds) for name in (arm, reference))
            if a is not None and b is not None and a.shape == b.shape:
                found.append(significance.compare_arms(arm, a, reference, b, seed=config.seed))
    p_values = [comparison.p_value for comparison, _ in found]
    rows = []
    for (comparison, draws), adjusted, level in zip(found, significance.holm(p_values),
                                                    significance.holm_levels(p_values, alpha)):
        low, high = significance.percentile_interval(draws, level)
        rows.append({"arm": comparison.arm, "reference": comparison.reference, "difference": comparison.difference,
                     "interval": [low, high], "interval_level": 1 - level, "p_holm": adjusted,
                     "minimum_detectable_difference": significance.minimum_detectable_difference(
                         comparison.standard_error, level),
                     "seeds": comparison.seeds, "questions": comparison.questions})
    return rows


def reward_curves(root: Path, config: PipelineConfig, names: list[str], seeds: int) -> pd.DataFrame:
    """Each GRPO arm's curve (`acqsynth.policy.reward_curve`: mean reward, verified rate, acquisition percentile,
    difficulty mix of the verified rollouts) per step, averaged over seeds: long format, one row per arm and step."""
    frames = []
    for name in names:
        for seed in range(seeds):
            path = Layout(run_dir(root, config, name, seed)).reward_curve
            if path.is_file():
                curve = pd.read_csv(path)
                if len(curve):
                    frames.append(curve.assign(arm=name, seed=seed))
    if not frames:
        return pd.DataFrame(columns=["arm", "step", "mean_reward", "verified_rate"])
    curves = pd.concat(frames)
    mix = [column for column in curves.columns if column.startswith("difficulty: ")]
    curves[mix] = curves[mix].fillna(0.0)  # a difficulty missing from a step's verified rollouts has share 0
    measures = [column for column in curves.columns if column not in ("arm", "step", "seed")]
    return curves.groupby(["arm", "step"], as_index=False)[measures].mean()


def weakest_difficulty(table: pd.DataFrame) -> str | None:
    """The difficulty on which the base student is least accurate: what its data should hold more of."""
    before = {column.removeprefix("before_"): table[column].mean() for column in table.columns
              if column.startswith("before_")}
    return min(before, key=before.get) if before else None
