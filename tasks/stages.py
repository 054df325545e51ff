"""One Prefect task per pipeline stage, made from its declaration (acqsynth.stages.PIPELINE). Each is versioned by
the hash of the code it runs, retries transient faults only, and is cached on what the declaration (and so
dvc.yaml, rendered from it) says the stage depends on: the content of the project files it runs (from the import
graph), of the paths it reads, and the values of its params. The two entry points (`dvc repro` and the pipeline
flow) thus share one notion of "up to date"."""

from __future__ import annotations

import errno
import hashlib
import json
from pathlib import Path
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.context import TaskRunContext

from acqsynth import stages
from acqsynth.artifacts import content_hash
from acqsynth.config import Layout, PipelineConfig
from acqsynth.quality.gates import GateFailed
from acqsynth.resume import ShardMapper
from acqsynth.stages import Stage
from tasks.prefect_env import send_progress_to_runs

send_progress_to_runs()  # here, with Prefect imported anyway: `acqsynth --help` need not import it

DECLARATIONS = {stage.name: stage for stage in stages.PIPELINE}


def _hashes(root: Path, paths: list[str]) -> dict[str, str | None]:
    return {path: content_hash(root / path) if (root / path).exists() else None for path in paths}


def output_hashes(root: Path, stage: str) -> dict[str, str | None]:
    declaration = DECLARATIONS[stage]
    return _hashes(root, [str(path) for path in (*declaration.writes, *(plot.path for plot in declaration.plots))])


def _param(values: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        values = values[part]
    return values


def stage_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    config: PipelineConfig = parameters["config"]
    root = Path(parameters["root"])
    stage = DECLARATIONS[context.task.name]
    values = config.model_dump(mode="json")
    key = {
        "stage": stage.name,
        "params": {name: _param(values, name) for name in stage.params},
        "code": stages.code_hashes(stage.name),
        "reads": _hashes(root, [str(path) for path in stage.reads]),
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


def _run(stage: Stage, config: PipelineConfig, root: str) -> dict[str, Any]:
    root_path = Path(root)
    extra = {"map_shards": shard_mapper(config)} if stage.sharded else {}
    try:
        metrics = stage.run(config, Layout(root_path), **extra)
    except GateFailed as failure:
        create_markdown_artifact(f"## Quality gate failed in `{stage.name}`\n\n```\n{failure}\n```\n",
                                 key=f"gate-failure-{stage.name.replace('_', '-')}")
        raise
    return {"metrics": metrics, "outputs": output_hashes(root_path, stage.name)}


def _stage_task(stage: Stage):
    def run_stage(config: PipelineConfig, root: str = ".") -> dict[str, Any]:
        return _run(stage, config, root)

    run_stage.__name__ = stage.name
    run_stage.__doc__ = stage.function.__doc__
    code = hashlib.sha256(json.dumps(stages.code_hashes(stage.name), sort_keys=True).encode()).hexdigest()
    return task(
        run_stage,
        name=stage.name,
        version=code[:12],  # of the code the stage runs: a change is a new version
        cache_key_fn=stage_cache_key,
        persist_result=True,
        retries=2,
        retry_delay_seconds=[2, 10],
        retry_condition_fn=is_transient,
    )


# The pipeline's tasks, in order: one per declared stage.
PIPELINE = tuple(_stage_task(stage) for stage in stages.PIPELINE)
