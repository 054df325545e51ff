"""The arms of a comparison and its plan: which (arm, seed) runs there are, in which order, and what each links.

An arm is a set of params.yaml values over the run's own (exactly what `dvc exp run -S key=value ...` would set) and
the stages it reruns.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acqsynth.config import REWARD_NAMES, ConfigError, PipelineConfig, merge, unknown_name
from acqsynth.stages import PIPELINE
def _stages_from(first: str) -> tuple[str, ...]:
    """The pipeline's stages from `first` up to evaluate: what an arm reruns (the report is the comparison's)."""
    names = [stage.name for stage in PIPELINE if stage.name != "report"]
    return tuple(names[names.index(first):])


GRPO_STAGES = _stages_from("policy_update")
SELECT_STAGES = _stages_from("select")
MAIN = "main"  # the main workspace, in Arm.inputs
SHARED = {MAIN: ("data/prepared", "models/base", "data/seed_centroids.npz")}
SEEDLESS_RUNS = ("student_b",)
ALL_REWARDS = {name: 1.0 for name in REWARD_NAMES}


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


def main_arms(config: PipelineConfig) -> list[Arm]:
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
    every_arm = config.model_copy(update={"compare": cfg.model_copy(update={"arms": None})})
    synthetic = next(arm for arm in main_arms(every_arm) if arm.name == "acqsyn_combined").overrides
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
    runs = [(arm, seed) for seed in chosen for arm in main_arms(config)]
    if "acqsyn_combined" in {arm.name for arm in main_arms(config)}:
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
