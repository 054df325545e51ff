"""Comparing the method with its baselines: every arm fine-tunes the same base student on the same budget of data
and is evaluated on the same splits, over several seeds; plus cross-model transfer and a size curve.

An arm is a set of params.yaml values over the run's own (exactly what `dvc exp run -S key=value ...` would set) and
the stages it reruns. Each (arm, seed) runs in its own workspace under `experiments/<domain>/`, with the prepared
splits, the base models and the seed centroids linked from the main workspace, so all arms share one student and
one evaluation. A run whose inputs and parameters are unchanged is reused from its `result.json`, never rerun.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from acqsynth import artifacts, significance
from acqsynth.config import (REWARD_NAMES, ConfigError, Layout, PipelineConfig, merge, resolve, unknown_name,
                             write_params)
from acqsynth.report import save_figure
from acqsynth.resume import fingerprint

GRPO_STAGES = ("policy_update", "generate", "verify", "acquisition_score", "select", "finetune", "evaluate")
SELECT_STAGES = ("select", "finetune", "evaluate")
MAIN = "main"  # the main workspace, in Arm.inputs
SHARED = {MAIN: ("data/prepared", "models/base", "data/seed_centroids.npz")}
SEEDLESS_RUNS = ("student_b",)
ALL_REWARDS = {name: 1.0 for name in REWARD_NAMES}
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Arm:
    name: str
    description: str
    overrides: dict[str, Any]  # params.yaml values over the run's config
    stages: tuple[str, ...]
    # The artifacts (layout-relative paths) linked into the run's workspace: run name (or MAIN) -> paths
    inputs: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(SHARED))
    group: str = "arms"  # arms | transfer | sizes


def _weights(chosen: dict[str, float]) -> dict[str, float]:
    # Every reward named, so that merging over the run's params replaces its weights instead of adding to them.
    return {name: chosen.get(name, 0.0) for name in REWARD_NAMES}


def _acquisition(weights: dict[str, float]) -> dict[str, Any]:
    # Verification gates; ranked within each group's verified rollouts, so that no reward's scale decides.
    return {"reward": {"mode": "gate", "weights": _weights(weights), "normalisation": "rank", "format_weight": 0.1,
                       "verified_bonus": 0.0, "failed_verification": 0.0}}


def arms(config: PipelineConfig) -> list[Arm]:
    """The baselines and the method's arms of issue 5, at the budget of `compare`."""
    cfg = config.compare
    n_samples = math.ceil(cfg.budget * cfg.oversample)
    synthetic = {"generate": {"n_samples": n_samples},
                 "select": {"source": "synthetic", "method": "random", "budget": cfg.budget}}
    combined = _acquisition(ALL_REWARDS)
    result = [
        Arm("seed_only", "fine-tune on the seed set only", {"select": {"source": "seed", "method": "all"}},
            SELECT_STAGES),
        Arm("random_pool", "a random `budget` from a real pool",
            {"select": {"source": "pool", "method": "random", "budget": cfg.budget}}, SELECT_STAGES),
        Arm("filtered_pool", "top `budget` of the real pool by summed min-max-normalised acquisition scores",
            {"policy_update": combined, "select": {"source": "pool", "method": "top_score", "budget": cfg.budget}},
            SELECT_STAGES),
        Arm("original", "the untrained generator", {"policy_update": {"max_steps": 0}, **synthetic}, GRPO_STAGES),
        Arm("rejection_sampling", f"best-of-{cfg.rejection_n} from the untrained generator, kept by the combined "
            "acquisition score",
            {"policy_update": {"max_steps": 0, **combined}, "generate": {"n_samples": cfg.rejection_n * n_samples},
             "select": {"source": "synthetic", "method": "top_score", "budget": cfg.budget}}, GRPO_STAGES),
        Arm("format_only", "GRPO with the format reward only",
            {"policy_update": {"reward": {"mode": "bonus", "weights": _weights({}), "format_weight": 1.0,
                                          "verified_bonus": 0.0, "failed_verification": 0.0}}, **synthetic},
            GRPO_STAGES),
        Arm("verify_only", "GRPO with reward 1 for a verified sample, 0 otherwise: the control for the acquisition "
            "term", {"policy_update": {"reward": {"mode": "bonus", "weights": _weights({}), "format_weight": 0.0,
                                                  "verified_bonus": 1.0, "failed_verification": 0.0}}, **synthetic},
            GRPO_STAGES),
        *[Arm(f"acqsyn_{name}", f"AcquisitionSynthesis, {name} reward",
              {"policy_update": _acquisition({name: 1.0}), **synthetic}, GRPO_STAGES) for name in REWARD_NAMES],
        Arm("acqsyn_combined", "AcquisitionSynthesis, all five rewards summed",
            {"policy_update": combined, **synthetic}, GRPO_STAGES),
    ]
    if cfg.arms is not None:
        names = [arm.name for arm in result]
        if unknown := [name for name in cfg.arms if name not in names]:
            raise ConfigError(unknown_name("compare.arms", unknown[0], names))
        result = [arm for arm in result if arm.name in cfg.arms]
    return result


def transfer_arms(root: Path, config: PipelineConfig) -> list[Arm]:
    """Student B (another shape) fine-tuned on the data made with student A as the reward model, against B's own
    arm: the same base generator trained with B as the reward model. `student_b` builds B (its generator is the
    main base generator, copied)."""
    cfg = config.compare
    student_b = {"build_models": {"generator": str((root / "models" / "base" / "generator").resolve()),
                                  "student": "tiny", "tiny": cfg.transfer_student.model_dump()}}
    synthetic = next(arm for arm in arms(config.model_copy(update={"compare": cfg.model_copy(update={"arms": None})}))
                     if arm.name == "acqsyn_combined").overrides
    b_inputs = {MAIN: ("data/prepared",), "student_b": ("models/base", "data/seed_centroids.npz")}
    return [
        Arm("student_b", f"base models with a student of another shape ({cfg.transfer_student.model_dump()})",
            student_b, ("build_models", "seed_centroids"), {MAIN: ("data/prepared",)}, "transfer"),
        Arm("b_on_a_data", "student B fine-tuned on the acqsyn_combined data of student A", student_b,
            ("finetune", "evaluate"),
            {MAIN: ("data/prepared",), "student_b": ("models/base",), "acqsyn_combined": ("data/selected.parquet",)},
            "transfer"),
        Arm("b_own", "student B fine-tuned on the data of GRPO with B as the reward model",
            merge(synthetic, student_b), GRPO_STAGES, b_inputs, "transfer"),
    ]


def size_arms(config: PipelineConfig) -> list[Arm]:
    """In-domain accuracy against the synthetic set size: random subsets of one large verified set written by the
    acqsyn_combined generator of the same seed."""
    cfg = config.compare
    pool = Arm("size_pool", "the acqsyn_combined generator writes enough samples for the largest size",
               {"policy_update": _acquisition(ALL_REWARDS),
                "generate": {"n_samples": math.ceil(max(cfg.sizes) * cfg.oversample)}},
               ("generate", "verify", "acquisition_score"),
               {**SHARED, "acqsyn_combined": ("models/generator_grpo",)}, "sizes")
    return [pool, *[Arm(f"size_{size}", f"{size} random verified samples of size_pool",
                        {"policy_update": _acquisition(ALL_REWARDS),
                         "select": {"source": "synthetic", "method": "random", "budget": size}},
                        SELECT_STAGES, {**SHARED, "size_pool": ("data/scored.parquet",)}, "sizes")
                    for size in cfg.sizes]]


def set_args(overrides: dict[str, Any], prefix: str = "") -> list[str]:
    """The overrides as `dvc exp run` flags: `-S section.key=value` (JSON values are YAML, which DVC parses)."""
    flags = []
    for key, value in overrides.items():
        if isinstance(value, dict):
            flags += set_args(value, f"{prefix}{key}.")
        else:
            flags.append(f"-S {prefix}{key}={value if isinstance(value, str) else json.dumps(value)}")
    return flags


def plan(root: Path, config: PipelineConfig, seeds: list[int] | None = None) -> list[tuple[Arm, int]]:
    """Every (arm, seed) run, in order: student B's base models (the longest run, first so that parallel workers
    do not wait on it at the end), each seed's arms, then cross-model transfer and the size curve (which build on
    the acqsyn_combined runs). With `seeds`, only the runs of those seeds (student B's base models, which every
    seed shares, go with any seed)."""
    cfg = config.compare
    chosen = list(range(cfg.seeds)) if seeds is None else seeds
    runs = [(arm, seed) for seed in chosen for arm in arms(config)]
    if "acqsyn_combined" in {arm.name for arm in arms(config)}:
        if cfg.transfer_student is not None:
            transfer = transfer_arms(root, config)
            runs = [(transfer[0], 0), *runs, *[(arm, seed) for seed in chosen for arm in transfer[1:]]]
        if cfg.sizes:
            runs += [(arm, seed) for seed in chosen if seed < min(cfg.size_seeds, cfg.seeds)
                     for arm in size_arms(config)]
    return runs


def waves(runs: list[tuple[Arm, int]]) -> list[list[tuple[Arm, int]]]:
    """The runs in groups, in plan order, such that every input a run links is made by a run of an earlier group:
    the runs of one group can run at the same time."""
    level: dict[tuple[str, int], int] = {}
    for arm, seed in runs:
        made_by = [(run, 0 if run in SEEDLESS_RUNS else seed) for run in arm.inputs if run != MAIN]
        level[(arm.name, seed)] = 1 + max((level.get(run, -1) for run in made_by), default=-1)
    return [[run for run in runs if level[(run[0].name, run[1])] == depth]
            for depth in range(max(level.values(), default=-1) + 1)]


def completed_results(root: Path, config: PipelineConfig) -> list[dict[str, Any]]:
    """The results of every run of the whole plan that is computed and still valid."""
    found = []
    for arm, seed in plan(root, config):
        try:
            result = cached_result(root, config, arm, seed)
        except artifacts.ArtifactError:  # an input of a run that never started
            result = None
        if result is not None:
            found.append(result | {"reused": True})
    return found


# -- running one (arm, seed) ----------------------------------------------------------------------------------------

def run_dir(root: Path, config: PipelineConfig, arm: str, seed: int) -> Path:
    return root / "experiments" / config.domain / arm / f"seed-{seed}"


def run_config(config: PipelineConfig, arm: Arm, seed: int) -> PipelineConfig:
    values = merge(config.model_dump(mode="json"), arm.overrides)
    values["seed"] = seed
    return resolve(values, f"arm {arm.name}")


def _link(source: Path, target: Path) -> None:
    if target.is_symlink() or target.exists():
        if target.is_symlink() or target.is_file():
            target.unlink()
        else:
            shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(os.path.relpath(source.resolve(), target.parent.resolve()))


def _source(root: Path, config: PipelineConfig, run: str, seed: int) -> Path:
    if run == MAIN:
        return root
    # Student B's base models do not depend on the seed: built once, shared by every seed.
    return run_dir(root, config, run, 0 if run in SEEDLESS_RUNS else seed)


def _inputs(root: Path, config: PipelineConfig, arm: Arm, seed: int) -> dict[str, Path]:
    """Where each linked artifact of the run comes from."""
    return {path: _source(root, config, run, seed) / path for run, paths in arm.inputs.items() for path in paths}


def run_fingerprint(root: Path, config: PipelineConfig, arm: Arm, seed: int) -> str:
    """What the run's result depends on: its parameters, stages and the content of every input it links. The
    `compare` section is left out: it shapes the plan, and what of it reaches a run is already in its overrides."""
    sources = _inputs(root, config, arm, seed)
    values = run_config(config, arm, seed).model_dump(mode="json", exclude={"compare"})
    return fingerprint(values, arm.stages,
                       {path: artifacts.content_hash(source) for path, source in sorted(sources.items())})


def _result_outputs(workspace: Path) -> dict[str, str]:
    """The content hash of each output of a run that the comparison reads besides result.json."""
    layout = Layout(workspace)
    return {str(path.relative_to(workspace)): artifacts.content_hash(path)
            for path in (layout.predictions, layout.reward_curve) if path.is_file()}


def _result_hash(result: dict[str, Any]) -> str:
    return artifacts.content_hash_of_bytes(json.dumps(result, sort_keys=True).encode())


def cached_result(root: Path, config: PipelineConfig, arm: Arm, seed: int) -> dict[str, Any] | None:
    """The run's result.json, if it is intact (its own hash and its outputs' hashes hold) and its inputs and
    parameters are unchanged; else None, and a damaged one is named in a warning (the run is then redone)."""
    workspace = run_dir(root, config, arm.name, seed)
    path = workspace / "result.json"
    if not path.is_file():
        return None
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
        if "result_hash" not in result:
            logger.warning("%s: written without a content hash (by an older acqsynth); running %s seed %d again",
                           path, arm.name, seed)
            return None
        intact = result.pop("result_hash") == _result_hash(result) and result["outputs"] == _result_outputs(workspace)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        intact = False
    if not intact:
        logger.warning("%s: damaged (it or an output it vouches for is not as written); running %s seed %d again",
                       path, arm.name, seed)
        return None
    return result if result["fingerprint"] == run_fingerprint(root, config, arm, seed) else None


def run_arm(root: Path, config: PipelineConfig, arm: Arm, seed: int,
            run_stage: Callable[[str, PipelineConfig, Layout], dict[str, Any]]) -> dict[str, Any]:
    """Run (or reuse) one arm at one seed; `run_stage` runs a stage in a workspace (a Prefect task in the flow)."""
    cached = cached_result(root, config, arm, seed)
    if cached is not None:
        return cached | {"reused": True}
    workspace = run_dir(root, config, arm.name, seed)
    workspace.mkdir(parents=True, exist_ok=True)
    for path, source in _inputs(root, config, arm, seed).items():
        _link(source, workspace / path)
    arm_config = run_config(config, arm, seed)
    artifacts.atomic_write_text(workspace / "params.yaml", json.dumps(arm_config.model_dump(mode="json"), indent=1))
    layout = Layout(workspace)
    metrics = {stage: run_stage(stage, arm_config, layout) for stage in arm.stages}
    result = {"arm": arm.name, "group": arm.group, "seed": seed, "description": arm.description,
              "overrides": arm.overrides, "metrics": metrics,
              "data": data_summary(layout, arm_config.domain) if layout.selected.exists() else None,
              "fingerprint": run_fingerprint(root, config, arm, seed), "outputs": _result_outputs(workspace)}
    artifacts.write_json(workspace / "result.json", result | {"result_hash": _result_hash(result)})
    return result | {"reused": False}


def data_summary(layout: Layout, domain: str) -> dict[str, Any]:
    """Size, diversity and difficulty of the data an arm fine-tuned on: mean pairwise cosine distance of the
    questions' MiniLM embeddings, the share of distinct question 4-grams, and each difficulty's share."""
    from acqsynth.acquisition.embeddings import embedder

    from acqsynth.domains import domain_module

    selected = artifacts.read_table(layout.selected, ["question", "reasoning"])
    questions = list(selected["question"])
    kinds = Counter(domain_module(domain).difficulty(question, reasoning) or "unknown"
                    for question, reasoning in zip(questions, selected["reasoning"]))
    embeddings = embedder("minilm", None).embed(questions)
    similarity = embeddings @ embeddings.T
    n = len(questions)
    mean_distance = float(1 - (similarity.sum() - np.trace(similarity)) / (n * (n - 1))) if n > 1 else 0.0
    grams = [tuple(words[i : i + 4]) for words in (q.split() for q in questions) for i in range(len(words) - 3)]
    return {"n": n, "embedding_diversity": mean_distance,
            "distinct_4grams": len(set(grams)) / len(grams) if grams else 0.0,
            "difficulty_mix": {kind: count / n for kind, count in sorted(kinds.items())}}


# -- statistics and the report --------------------------------------------------------------------------------------

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


def _pct_ci(mean: float, half: float) -> str:
    if math.isnan(half):
        return f"{100 * mean:.1f}"
    return f"{100 * mean:.1f} ± {100 * half:.1f}"


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


def primary_markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| arm | against | difference, pts | Holm interval, pts | level | Holm p | detectable, pts | seeds x "
             "questions |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        low, high = row["interval"]
        lines.append(f"| {row['arm']} | {row['reference']} | {100 * row['difference']:+.1f} | "
                     f"[{100 * low:+.1f}, {100 * high:+.1f}] | {100 * row['interval_level']:.1f}% | "
                     f"{row['p_holm']:.3f} | {100 * row['minimum_detectable_difference']:.1f} | "
                     f"{row['seeds']} x {row['questions']} |")
    return "\n".join(lines)


def control_lines(table: pd.DataFrame) -> list[str]:
    """What each acquisition arm adds over `verify_only` (the same GRPO with the acquisition term removed)."""
    lines = []
    for arm in sorted(a for a in table["arm"].unique() if a.startswith("acqsyn_")):
        diff, half, pairs = paired_difference(table, arm, "verify_only")
        if not pairs:
            continue
        verdict = ("better than `verify_only`" if diff - half > 0 else
                   "no better than `verify_only`: its acquisition term does nothing measurable here")
        lines.append(f"- `{arm}`: {100 * diff:+.1f} pts (CI95 ± {100 * half:.1f}, {pairs} seeds) against "
                     f"`verify_only`, {verdict}.")
    return lines


AUDIT_COLUMNS = {"verified_rate": "verified rate", "copy_rate": "copy rate",
                 "reference_confirmed_rate": "kept answers the reference solver confirms",
                 "difficulty_matches_seed_rate": "difficulty matches the seed's",
                 "informative_group_rate": "GRPO groups with two differing rewards"}


def audit_markdown(table: pd.DataFrame) -> str:
    """Per arm, means over seeds: what verification kept (the verify stage's audit, synthetic arms only) and the
    difficulty mix of the data the student was fine-tuned on (every arm)."""
    mix = sorted(column for column in table.columns if column.startswith("difficulty_")
                 and column not in AUDIT_COLUMNS)
    header = ["arm", *AUDIT_COLUMNS.values(), *[f"fine-tuning data: {c.removeprefix('difficulty_')}" for c in mix]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for arm, group in table.groupby("arm", sort=False):
        audit = [group[column].dropna().mean() if column in group else float("nan") for column in AUDIT_COLUMNS]
        # A seed whose data has no sample of a difficulty has share 0 there, not a missing value.
        shares = [group[column].fillna(0).mean() if group["n_data"].notna().any() else float("nan")
                  for column in mix]
        lines.append(f"| {arm} | " + " | ".join("—" if math.isnan(value) else f"{100 * value:.1f}%"
                                               for value in [*audit, *shares]) + " |")
    return "\n".join(lines)


def difficulty_markdown(table: pd.DataFrame) -> str:
    """In-domain accuracy per difficulty after fine-tuning, per arm (mean over seeds), under the base student's."""
    kinds = sorted(column.removeprefix("accuracy_") for column in table.columns if column.startswith("accuracy_"))
    if not kinds:
        return ""
    lines = ["| arm | " + " | ".join(kinds) + " |", "|" + "---|" * (len(kinds) + 1),
             "| base student | " + " | ".join(f"{100 * table[f'before_{kind}'].mean():.1f}%" for kind in kinds) + " |"]
    for arm, group in table.groupby("arm", sort=False):
        lines.append(f"| {arm} | " + " | ".join(f"{100 * group[f'accuracy_{kind}'].mean():.1f}%" for kind in kinds)
                     + " |")
    return "\n".join(lines)


def summary_markdown(summary: pd.DataFrame, base_accuracy: float, reference: str = "original") -> str:
    forgetting = [column for column in summary.columns if column.startswith("forgetting_")]
    header = ["arm", "seeds", "in-domain accuracy % (CI95)", f"vs {reference}, pts (CI95)",
              *[f"forgetting {c.removeprefix('forgetting_')}, pts" for c in forgetting], "verified rate", "n",
              "diversity"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in summary.itertuples():
        diff = "—" if math.isnan(row.diff_vs_original) else _pct_ci(row.diff_vs_original, row.diff_ci95)
        cells = [row.arm, str(row.seeds), _pct_ci(row.accuracy, row.accuracy_ci95), diff,
                 *[f"{100 * getattr(row, c):.1f}" for c in forgetting],
                 "—" if math.isnan(row.verified_rate) else f"{100 * row.verified_rate:.0f}%",
                 "—" if math.isnan(row.n_data) else f"{row.n_data:.0f}",
                 "—" if math.isnan(row.embedding_diversity) else f"{row.embedding_diversity:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Base student before fine-tuning: {100 * base_accuracy:.1f}% in domain.")
    return "\n".join(lines)


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


def _plot_grpo_diagnostics(curves: pd.DataFrame, weakest: str | None, pool_share: float | None, path: Path) -> None:
    """Over GRPO steps, per arm: the verified rate, the acquisition percentile against the fixed reference set, and
    the share of the student's weakest difficulty among the verified rollouts (dashed: the real pool's)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("verified_rate", "verified rate"), ("acquisition_percentile", "acquisition percentile vs reference")]
    if weakest is not None and f"difficulty: {weakest}" in curves:
        panels.append((f"difficulty: {weakest}", f"share of '{weakest}' among verified"))
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8))
    for axis, (column, label) in zip(np.atleast_1d(axes), panels, strict=True):
        for arm, group in curves.groupby("arm"):
            if column in group and group[column].notna().any():
                # a 5-step rolling mean: one step's 32 rollouts are noisy
                axis.plot(group["step"], group[column].rolling(5, min_periods=1).mean(), label=arm)
        if column.startswith("difficulty: ") and pool_share is not None:
            axis.axhline(pool_share, color="grey", linestyle="--", label="real pool")
        axis.set_xlabel("GRPO step")
        axis.set_ylabel(label)
        axis.set_ylim(0, 1)
    np.atleast_1d(axes)[0].legend(fontsize=7)
    save_figure(figure, path)


def _plot_accuracy(summary: pd.DataFrame, base_accuracy: float, questions: float, path: Path) -> None:
    """Each arm's mean accuracy with its CI95 over seeds, sorted, on an axis fitted to the intervals (a bar from 0
    would hide differences of a few points), beside the base student."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ordered = summary.sort_values("accuracy")
    means = 100 * ordered["accuracy"].to_numpy()
    errors = np.nan_to_num(100 * ordered["accuracy_ci95"].to_numpy())
    figure, axis = plt.subplots(figsize=(8, 0.45 * len(ordered) + 1.6))
    axis.errorbar(means, range(len(ordered)), xerr=errors, fmt="o", capsize=3, color="tab:blue")
    axis.axvline(100 * base_accuracy, color="grey", linestyle="--", label=f"base student ({100 * base_accuracy:.1f}%)")
    axis.set_yticks(range(len(ordered)), ordered["arm"])
    low = min(float(np.min(means - errors)), 100 * base_accuracy)
    high = max(float(np.max(means + errors)), 100 * base_accuracy)
    margin = max(1.0, 0.08 * (high - low))
    axis.set_xlim(max(0.0, low - margin), min(100.0, high + margin))
    axis.set_xlabel("in-domain accuracy %")
    seeds = int(ordered["seeds"].max()) if len(ordered) else 0
    axis.set_title(f"In-domain accuracy per arm: mean and 95% t-interval over {seeds} seeds, {questions:.0f} questions",
                   fontsize=9)
    axis.legend(fontsize=8, loc="lower right")
    axis.grid(axis="x", alpha=0.3)
    save_figure(figure, path)


def _plot_curves(curves: pd.DataFrame, x: str, y: str, xlabel: str, ylabel: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4))
    for arm, group in curves.groupby("arm"):
        axis.plot(group[x], group[y], marker="o" if len(group) < 10 else None, label=arm)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.legend(fontsize=7)
    save_figure(figure, path)


# The files of a comparison's report that dvc.yaml shows as plots (acqsynth.dvc_yaml), under report_dir.
ARMS_TABLE = "arms.csv"
ACCURACY_PLOT, REWARDS_PLOT, DIAGNOSTICS_PLOT = "accuracy.png", "rewards.png", "grpo_diagnostics.png"


def report_dir(root: Path, domain: str) -> Path:
    return root / "reports" / "compare" / domain


def write_report(root: Path, config: PipelineConfig, results: list[dict[str, Any]], command: str,
                 seconds: float, design: str) -> str:
    """reports/compare/<domain>/: report.md, per-run and per-arm CSVs (DVC plots) and PNG plots."""
    out = report_dir(root, config.domain)
    table = results_table(results, config.domain)
    base_accuracy = float(table["before"].iloc[0]) if len(table) else float("nan")
    main = table[table["group"] == "arms"]
    summary = summary_table(main)
    write_params(out / "params.yaml", config.model_dump(mode="json"))
    artifacts.atomic_write_text(out / "runs.csv", table.to_csv(index=False))
    artifacts.atomic_write_text(out / ARMS_TABLE, summary.to_csv(index=False))
    primary = primary_comparisons(root, config, main)
    artifacts.atomic_write_text(out / "summary.json",
                                json.dumps({**summary_json(main), "primary_comparisons": primary}, indent=2) + "\n")
    _plot_accuracy(summary, base_accuracy, _eval_n(results), out / ACCURACY_PLOT)
    grpo_arms = [arm.name for arm in arms(config) if "policy_update" in arm.stages and arm.name != "original"
                 and arm.name != "rejection_sampling"]
    curves = reward_curves(root, config, grpo_arms, config.compare.seeds)
    artifacts.atomic_write_text(out / "reward_curves.csv", curves.to_csv(index=False))
    from acqsynth.policy import REFERENCE_SIZE

    weakest = weakest_difficulty(main)
    pool = main[main["arm"] == "random_pool"]
    pool_share = (float(pool[f"difficulty_{weakest}"].mean())
                  if weakest is not None and len(pool) and f"difficulty_{weakest}" in pool else None)
    if len(curves):
        _plot_curves(curves, "step", "mean_reward", "GRPO step", "mean reward (over seeds)", out / REWARDS_PLOT)
        _plot_grpo_diagnostics(curves, weakest, pool_share, out / DIAGNOSTICS_PLOT)
    sections = [
        f"# Comparison of arms: profile `{config.profile}`, target domain `{config.domain}`",
        "",
        f"Command: `{command}`; parameters: [params.yaml](params.yaml), with each arm's overrides laid over them "
        "(under *Arms*).  ",
        f"Wall time: {seconds / 60:.1f} min on {len(os.sched_getaffinity(0))} cores, {config.compare.workers} runs at "
        f"a time. Budget: {config.compare.budget} samples per arm; "
        f"{config.compare.seeds} seeds per arm; accuracy on {int(_eval_n(results))} held-out {config.domain} "
        f"questions of the `{config.evaluate.split}` split; intervals are 95% t-intervals over seeds (the difference "
        "from `original` is paired by seed).",
        "",
        summary_markdown(summary, base_accuracy),
        "",
        f"![accuracy per arm]({ACCURACY_PLOT})",
        "",
        "## What each arm's data is",
        "",
        "Verification's audit of the kept samples (means over seeds; copies are counted over parsed samples) and the "
        "difficulty mix of the samples the student was fine-tuned on.",
        "",
        audit_markdown(main),
        "",
    ]
    if by_difficulty := difficulty_markdown(main):
        sections += ["## In-domain accuracy by difficulty", "",
                     "After fine-tuning, mean over seeds; the first row is the base student.", "", by_difficulty, ""]
    if primary:
        sections += ["## Primary comparisons: paired bootstrap over seeds and questions, Holm-corrected", "",
                     "Each interval is drawn at its Holm level (95% family-wise); *detectable* is the smallest true "
                     "difference the comparison would find with 80% power at that level.", "",
                     primary_markdown(primary), ""]
    controls = control_lines(main)
    if controls:
        sections += ["## Does the acquisition term do anything?", "",
                     "Each acquisition arm against `verify_only`, paired by seed:", "", *controls, ""]
    transfer = table[table["group"] == "transfer"]
    if len(transfer):
        transfer_summary = summary_table(transfer, reference="b_own")
        sections += ["## Cross-model transfer (student B of another shape)", "",
                     "`b_on_a_data`: B fine-tuned on the data made with student A as the reward model; `b_own`: B's "
                     "own arm (GRPO with B as the reward model). The difference column is against `b_own`.", "",
                     summary_markdown(transfer_summary, float(transfer["before"].iloc[0]), "b_own"), ""]
    sizes = table[table["group"] == "sizes"]
    if len(sizes):
        sizes = sizes.assign(size=sizes["arm"].str.removeprefix("size_").astype(int))
        curve = sizes.groupby("size", as_index=False)["accuracy"].agg(["mean", "std", "count"])
        artifacts.atomic_write_text(out / "size_curve.csv", curve.to_csv(index=False))
        _plot_curves(sizes.groupby("size", as_index=False)["accuracy"].mean().assign(arm="acqsyn_combined"),
                     "size", "accuracy", "synthetic set size", "in-domain accuracy", out / "size_curve.png")
        sections += ["## Low to high resource: accuracy against synthetic set size", "",
                     "| size | accuracy % | seeds |", "|---|---|---|",
                     *[f"| {row.size} | {100 * row.mean:.1f} | {row.count} |" for row in curve.itertuples()],
                     "", "![size curve](size_curve.png)", ""]
    if len(curves):
        sections += ["## GRPO reward curves", "", f"![GRPO mean reward per step]({REWARDS_PLOT})", "",
                     "Over GRPO steps (means over seeds, 5-step rolling): the verified rate; the acquisition "
                     f"percentile of the scored rollouts among {REFERENCE_SIZE} fixed real pool samples scored by the "
                     "same student (GRPO ranks rewards within each group, so only this shows whether the generator "
                     "comes to write samples of higher absolute acquisition); and the share of the base student's "
                     f"weakest difficulty (`{weakest}`) among the verified rollouts, beside the real pool's.", "",
                     f"![GRPO diagnostics]({DIAGNOSTICS_PLOT})", ""]
    failed = [result for result in results if "failed" in result]
    if failed:
        sections += ["## Failed runs", "", "| arm | seed | error |", "|---|---|---|",
                     *[f"| {r['arm']} | {r['seed']} | {r['failed'][:300]} |" for r in failed], ""]
    sections += ["## Arms", "", "Each arm at seed N in the main workspace: `dvc exp run -S seed=N` plus its overrides.",
                 "", "| arm | what it is | overrides |", "|---|---|---|",
                 *[f"| {arm.name} | {arm.description} | `{' '.join(set_args(arm.overrides))}` |"
                   for arm in arms(config)], "",
                 "## Design of the comparison", "", design, ""]
    markdown = "\n".join(sections)
    artifacts.atomic_write_text(out / "report.md", markdown)
    return markdown


def _eval_n(results: list[dict[str, Any]]) -> float:
    for result in results:
        if "evaluate" in result["metrics"]:
            return result["metrics"]["evaluate"]["in_domain"]["n"]
    return float("nan")


DESIGN = """\
The `tiny` profile is built so that the method can show an effect if it has one, and the evaluation is fixed before
any arm runs:

- **Headroom.** The base student is pre-trained on all three domains for a fixed number of steps, short of
  mastering them; its accuracy on each domain's held-out split is measured before any fine-tuning and shown above.
- **Reachable samples.** The generator starts from the student's weights and is pre-trained to write samples of
  every skill of the domain, so samples of the kinds the student gets wrong are within its reach from the start.
- **Measurable budget.** Every arm fine-tunes the same base student on the same number of samples (seed-only: the
  seed set), with the same fine-tuning settings, and is scored on the same held-out split with a verifiable check;
  differences are reported with 95% intervals over seeds, paired by seed against `original`. One run's accuracy
  on n held-out questions has a binomial standard error of sqrt(p(1-p)/n) (3.4 points at p = 0.65, n = 200), so
  with a few seeds only differences of several points can be told apart from noise.
- **No tuning to the outcome.** Arms, seeds, budget and evaluation split are fixed in `params.yaml` (`compare`);
  the report shows every arm, whatever its result.
"""
