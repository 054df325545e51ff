"""Prefect flows: the whole pipeline as one flow run, and one stage as its own flow run (what dvc.yaml calls)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from acqsynth.config import Layout, PipelineConfig, load_config
from acqsynth.quality.gates import DOCS
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
    # The run as a DVC experiment, so that `dvc exp show` lists it beside every other run with its headline.
    headline_metrics = Layout().stage_metrics(stage_tasks.PIPELINE[-1].name)
    saved = subprocess.run([sys.executable, "-m", "dvc", "exp", "save", "--quiet", "-I", "dvc.lock", "-I",
                            str(headline_metrics), "-m", f"acqsynth run: {config.profile}, {config.domain}, seed "
                            f"{config.seed}"], cwd=root, capture_output=True, text=True)
    if saved.returncode != 0:
        return f"dvc.lock updated, but the run was not saved as a DVC experiment: {saved.stderr.strip()}"
    return None


def _embedded_images(markdown: str, directory: Path) -> str:
    """The markdown with each local PNG it shows inlined as a data URI: a Prefect artifact is stored text, where a
    relative image path points nowhere."""
    import base64
    import re

    def inline(match: re.Match[str]) -> str:
        path = directory / match[2]
        if not path.is_file():
            return match[0]
        return f"![{match[1]}](data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()})"

    return re.sub(r"!\[([^\]]*)\]\(([^):]+\.png)\)", inline, markdown)


def publish_run(root: Path, results: dict[str, dict[str, Any]]) -> None:
    """What the run page in the Prefect UI shows besides the logs: the report with its plot, a table of each stage's
    headline metrics, and links to the report, data, checkpoints and the quality gates' Data Docs."""
    from prefect.artifacts import create_link_artifact, create_table_artifact

    layout = Layout(root)
    publish_report(root)
    create_table_artifact([{"stage": name, "seconds": result["metrics"].get("seconds"),
                            "headline": headline(result["metrics"])} for name, result in results.items()],
                          key="acqsynth-stage-metrics", description="Each stage's wall time and first metrics "
                          "(the whole of them: metrics/<stage>.json)")
    for key, text, path in (("acqsynth-report-file", "report", layout.report), ("acqsynth-data", "data",
                            layout.root / "data"), ("acqsynth-checkpoints", "checkpoints", layout.root / "models"),
                            ("acqsynth-quality", "quality gates' Data Docs", layout.quality_reports / DOCS /
                             "index.html")):
        if path.exists():
            create_link_artifact(path.resolve().as_uri(), link_text=f"{text}: {path.resolve()}", key=key)


def publish_report(root: Path) -> None:
    report = Layout(root).report
    if report.is_file():
        create_markdown_artifact(_embedded_images(report.read_text(encoding="utf-8"), report.parent),
                                 key="acqsynth-report", description="Summary of the pipeline run")


def describe_run(config: PipelineConfig, root: Path, *extra_tags: str, one_seed: bool = True) -> None:
    """Tags (run_tags) and the resolved parameters on the flow run, however it was started (the CLI, a deployment,
    a test): a run's profile, domain, seed and code revision can be filtered on and its values read in the UI."""
    import yaml
    from prefect import get_client
    from prefect.runtime import flow_run

    with get_client(sync_client=True) as client:
        current = client.read_flow_run(flow_run.id)
        tags = [tag for tag in run_tags(config, root) if one_seed or not tag.startswith("seed:")]
        client.update_flow_run(flow_run.id, tags=sorted({*current.tags, *tags, *extra_tags}))
    create_markdown_artifact(f"```yaml\n{yaml.safe_dump(config.model_dump(mode='json'), sort_keys=False)}```\n",
                             key="acqsynth-parameters", description="The run's resolved parameters")


def run_name() -> str:
    """A run's name in the Prefect UI: what it ran (profile, target domain, seed) rather than a random pair of words."""
    from prefect.runtime import flow_run

    parameters = flow_run.parameters
    config = load_config(Path(parameters.get("root", ".")) / parameters.get("params_path", "params.yaml"))
    if flow_run.flow_name == "acqsynth-compare":
        return f"compare {config.profile} {config.domain}"
    stage = f"{parameters['name']} " if "name" in parameters else ""
    return f"{stage}{config.profile} {config.domain} seed {config.seed}"


def run_tags(config: PipelineConfig, root: Path) -> list[str]:
    """Tags to filter runs by in the Prefect UI: profile, target domain, seed and, in a git checkout, the revision."""
    try:
        revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True)
    except OSError:  # no git on this machine
        revision = None
    git = [f"git:{revision.stdout.strip()}"] if revision and revision.returncode == 0 and revision.stdout.strip() \
        else []
    return [f"profile:{config.profile}", f"domain:{config.domain}", f"seed:{config.seed}", *git]


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
    describe_run(config, Path(root))
    logger = get_run_logger()
    results = {}
    for stage_task in stage_tasks.PIPELINE:
        results[stage_task.name] = run_stage_task(stage_task, config, root)
        logger.info("%s: %s", stage_task.name, headline(results[stage_task.name]["metrics"]))
    publish_run(Path(root), results)
    if (not_recorded := record_in_dvc(Path(root), config)) is not None:
        logger.warning(not_recorded)
    return {name: result["metrics"] for name, result in results.items()}


@flow(name="acqsynth-stage", flow_run_name=run_name)
def stage(name: str, params_path: str = "params.yaml", root: str = ".") -> dict[str, Any]:
    config = load_config(Path(root) / params_path)
    describe_run(config, Path(root), f"stage:{name}")
    stage_task = next(t for t in stage_tasks.PIPELINE if t.name == name)
    result = run_stage_task(stage_task, config, root)
    if name == "report":
        publish_report(Path(root))
    return result["metrics"]
