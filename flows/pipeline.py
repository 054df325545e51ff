"""Prefect flows: the whole pipeline as one flow run, and one stage as its own flow run (what dvc.yaml calls)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from acqsynth.config import Layout, PipelineConfig, load_config
from tasks import stages as stage_tasks


def run_stage_task(stage_task, config, root: str) -> dict[str, Any]:
    """Run a stage task; a cached result counts only while its outputs on disk are still the ones it recorded."""
    result = stage_task(config, root)
    if result["outputs"] != stage_tasks.output_hashes(Path(root), stage_task.name):
        result = stage_task.with_options(refresh_cache=True)(config, root)
    return result


def record_in_dvc(root: Path, config: PipelineConfig) -> str | None:
    """Write what the flow produced into dvc.lock, so that `dvc status` agrees the workspace is up to date; but only
    when the run used params.yaml's values, since dvc.lock records those. Returns why it did not, if it did not."""
    if not (root / ".dvc").is_dir():
        return None
    params = root / "params.yaml"
    if not params.is_file() or load_config(params) != config:
        return (f"dvc.lock not updated: this run's parameters differ from {params}, which dvc.lock records; "
                "`dvc status` shows the stages it changed as modified")
    subprocess.run([sys.executable, "-m", "dvc", "commit", "--force", "--quiet"], cwd=root, check=True)
    return None


def publish_report(root: Path) -> None:
    report = Layout(root).report
    if report.is_file():
        create_markdown_artifact(report.read_text(encoding="utf-8"), key="acqsynth-report",
                                 description="Summary of the pipeline run")


def run_name() -> str:
    """A run's name in the Prefect UI: what it ran (profile, target domain, seed) rather than a random pair of words."""
    from prefect.runtime import flow_run

    parameters = flow_run.parameters
    config = load_config(Path(parameters.get("root", ".")) / parameters.get("params_path", "params.yaml"))
    stage = f"{parameters['name']} " if "name" in parameters else ""
    return f"{stage}{config.profile} {config.domain} seed {config.seed}"


def run_tags(config: PipelineConfig) -> list[str]:
    """Tags to filter runs by in the Prefect UI."""
    return [f"profile:{config.profile}", f"domain:{config.domain}", f"seed:{config.seed}"]


def headline(metrics: dict[str, Any], limit: int = 6) -> str:
    """The first few scalar metrics of a stage, for its log line (the whole dict is in metrics/<stage>.json)."""
    scalars = [(key, value) for key, value in metrics.items() if isinstance(value, (int, float, str, bool))]
    shown = ", ".join(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
                      for key, value in scalars[:limit])
    return shown + (", ..." if len(scalars) > limit or len(scalars) < len(metrics) else "")


@flow(name="acqsynth-pipeline", flow_run_name=run_name)
def pipeline(params_path: str = "params.yaml", root: str = ".") -> dict[str, Any]:
    """Every stage in order, each cached on its inputs; then dvc.lock records the result."""
    config = load_config(Path(root) / params_path)
    logger = get_run_logger()
    results = {}
    for stage_task in stage_tasks.PIPELINE:
        results[stage_task.name] = run_stage_task(stage_task, config, root)
        logger.info("%s: %s", stage_task.name, headline(results[stage_task.name]["metrics"]))
    publish_report(Path(root))
    if (not_recorded := record_in_dvc(Path(root), config)) is not None:
        logger.warning(not_recorded)
    return {name: result["metrics"] for name, result in results.items()}


@flow(name="acqsynth-stage", flow_run_name=run_name)
def stage(name: str, params_path: str = "params.yaml", root: str = ".") -> dict[str, Any]:
    config = load_config(Path(root) / params_path)
    stage_task = next(t for t in stage_tasks.PIPELINE if t.name == name)
    result = run_stage_task(stage_task, config, root)
    if name == "report":
        publish_report(Path(root))
    return result["metrics"]
