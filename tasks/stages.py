"""One Prefect task per pipeline stage. Each wraps the stage function of `acqsynth.stages`, is versioned, retries
transient faults only, and is cached on what dvc.yaml says the stage depends on: the content hashes of its deps,
the values of its params and the task's version. The two entry points (`dvc repro` and the pipeline flow) thus
share one notion of "up to date"."""

from __future__ import annotations

import errno
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.context import TaskRunContext

from acqsynth import stages
from acqsynth.artifacts import content_hash
from acqsynth.config import Layout, PipelineConfig
from acqsynth.quality.gates import GateFailed
from acqsynth.resume import ShardMapper

# Bump a stage's version when its code changes what it writes, so cached results are not reused.
VERSION = "3"


def stage_spec(root: Path, stage: str) -> dict[str, list[str]]:
    """deps, params and outs of a stage as dvc.yaml declares them."""
    spec = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))["stages"][stage]
    outs = [next(iter(out)) if isinstance(out, dict) else out for out in spec.get("outs", [])]
    return {"deps": spec.get("deps", []), "params": spec.get("params", []), "outs": outs}


def _hashes(root: Path, paths: list[str]) -> dict[str, str | None]:
    return {path: content_hash(root / path) if (root / path).exists() else None for path in paths}


def output_hashes(root: Path, stage: str) -> dict[str, str | None]:
    return _hashes(root, stage_spec(root, stage)["outs"])


def _param(values: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        values = values[part]
    return values


def stage_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    config: PipelineConfig = parameters["config"]
    root = Path(parameters["root"])
    stage = context.task.name
    spec = stage_spec(root, stage)
    values = config.model_dump(mode="json")
    key = {
        "stage": stage,
        "version": context.task.version,
        "params": {name: _param(values, name) for name in spec["params"]},
        "deps": _hashes(root, spec["deps"]),
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def is_transient(_task, _task_run, state) -> bool:
    """Retry I/O faults and killed workers; never bad params, bad data or a failed quality gate."""
    error = state.data if isinstance(state.data, BaseException) else None
    if error is None:
        return False
    deterministic = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
    # A full, read-only or over-quota disk fails the same way on every retry.
    lasting = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.ENOENT}
    return isinstance(error, (OSError, ConnectionError)) and not isinstance(error, deterministic) \
        and getattr(error, "errno", None) not in lasting


def shard_mapper(config: PipelineConfig) -> ShardMapper | None:
    """The runner for a stage's shards, as `fanout` in params.yaml names it; None runs them in the stage."""
    from tasks.fanout import ray_mapper, thread_mapper

    if config.fanout.ray_address is not None:
        return ray_mapper(config.fanout.ray_address, num_cpus=config.fanout.workers)
    return thread_mapper(config.fanout.workers) if config.fanout.workers > 1 else None


def _run(stage: str, config: PipelineConfig, root: str) -> dict[str, Any]:
    root_path = Path(root)
    extra = {"map_shards": shard_mapper(config)} if stage in stages.SHARDED_STAGES else {}
    try:
        metrics = getattr(stages, stage)(config, Layout(root_path), **extra)
    except GateFailed as failure:
        create_markdown_artifact(f"## Quality gate failed in `{stage}`\n\n```\n{failure}\n```\n",
                                 key=f"gate-failure-{stage.replace('_', '-')}")
        raise
    return {"metrics": metrics, "outputs": output_hashes(root_path, stage)}


def _stage_task(stage: str):
    def run_stage(config: PipelineConfig, root: str = ".") -> dict[str, Any]:
        return _run(stage, config, root)

    run_stage.__name__ = stage
    run_stage.__doc__ = getattr(stages, stage).__doc__
    return task(
        run_stage,
        name=stage,
        version=VERSION,
        cache_key_fn=stage_cache_key,
        persist_result=True,
        retries=2,
        retry_delay_seconds=[2, 10],
        retry_condition_fn=is_transient,
    )


prepare = _stage_task("prepare")
build_models = _stage_task("build_models")
seed_centroids = _stage_task("seed_centroids")
policy_update = _stage_task("policy_update")
generate = _stage_task("generate")
verify = _stage_task("verify")
acquisition_score = _stage_task("acquisition_score")
select = _stage_task("select")
finetune = _stage_task("finetune")
evaluate = _stage_task("evaluate")
report = _stage_task("report")

PIPELINE = (prepare, build_models, seed_centroids, policy_update, generate, verify, acquisition_score, select,
            finetune, evaluate, report)
