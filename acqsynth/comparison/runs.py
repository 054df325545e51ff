"""Running one (arm, seed) in its own workspace under `experiments/<domain>/`, with the prepared splits, the base
models and the seed centroids linked from the main workspace, so all arms share one student and one evaluation. A
run whose inputs and parameters are unchanged is reused from its `result.json`, never rerun.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from acqsynth import artifacts
from acqsynth.comparison.arms import MAIN, SEEDLESS_RUNS, Arm, plan
from acqsynth.config import Layout, PipelineConfig, merge, resolve
from acqsynth.resume import fingerprint

logger = logging.getLogger(__name__)


def run_dir(root: Path, config: PipelineConfig, arm: str, seed: int) -> Path:
    return root / "experiments" / config.profile / config.domain / arm / f"seed-{seed}"


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
