"""The comparison flow: the shared stages once in the main workspace, then every (arm, seed) run as a Prefect task
whose stages are the pipeline's stage tasks, cross-model transfer and the size curve, and the report (markdown
file, Prefect artifact, PNG and CSV plots)."""

from __future__ import annotations

import functools
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from prefect import flow, get_client, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.task_runners import ProcessPoolTaskRunner

from acqsynth import stages
from acqsynth.comparison import arms, report, runs
from acqsynth.config import Layout, PipelineConfig, load_config
from flows.pipeline import describe_run, run_name, run_stage_task
from tasks import stages as stage_tasks

# The stages that write what every arm links from the main workspace (arms.SHARED).
SHARED_STAGES = tuple(stage_task for stage_task, stage in zip(stage_tasks.PIPELINE, stages.PIPELINE)
                      if {str(path) for path in stage.writes} <= set(arms.SHARED[arms.MAIN]))


STAGE_TASKS = {stage_task.name: stage_task for stage_task in stage_tasks.PIPELINE}


def _run_stage(stage: str, config: PipelineConfig, layout: Layout) -> dict[str, Any]:
    """A stage of an arm's run, through its Prefect task in the arm's workspace, as `acqsynth run` runs it: the same
    cache, retries and gate-failure artifact."""
    return run_stage_task(STAGE_TASKS[stage], config, str(layout.root))["metrics"]


def _start_run_process(torch_threads: int, api_url: str) -> None:
    """Each run process gets its share of the cores, and reports to the flow's Prefect API instead of starting a
    temporary server of its own."""
    os.environ["PREFECT_API_URL"] = api_url
    os.environ["OMP_NUM_THREADS"] = str(torch_threads)
    import torch

    torch.set_num_threads(torch_threads)


@task(name="arm", task_run_name="{arm.name} seed {seed}", retries=1, retry_condition_fn=stage_tasks.is_transient)
def arm_run(root: str, config: PipelineConfig, arm: arms.Arm, seed: int) -> dict[str, Any]:
    """One arm at one seed in its own workspace; reused from its result.json while its inputs are unchanged."""
    return runs.run_arm(Path(root), config, arm, seed, _run_stage)


def record_experiments(root: Path, config: PipelineConfig, results: list[dict[str, Any]]) -> str | None:
    """Each finished run as a DVC experiment of the checkout's commit, named `<profile>-<domain>-<arm>-seed<k>`, so
    that `dvc exp show` lists it beside the pipeline's runs: a commit on HEAD with the run's params.yaml and its
    headline as metrics/report.json (what `dvc exp save` would commit; the runs' workspaces are not the checkout's,
    so it is written with git's own plumbing). Returns why it recorded nothing, if it did not."""
    if not (root / ".dvc").is_dir():
        return None
    git = functools.partial(subprocess.run, cwd=root, capture_output=True, text=True)
    head = git(["git", "rev-parse", "HEAD"])
    if head.returncode != 0:
        return f"the runs were not recorded as DVC experiments: {head.stderr.strip()}"
    baseline = head.stdout.strip()
    identity = {f"GIT_{role}_{field}": os.environ.get(f"GIT_{role}_{field}", value) for role in ("AUTHOR", "COMMITTER")
                for field, value in (("NAME", "acqsynth"), ("EMAIL", "acqsynth@localhost"))}
    with tempfile.TemporaryDirectory() as scratch:
        try:
            _commit_experiments(root, config, results, baseline, {**os.environ, **identity,
                                                                  "GIT_INDEX_FILE": str(Path(scratch) / "index")})
        except subprocess.CalledProcessError as error:  # the report is still written
            return f"the runs were not all recorded as DVC experiments: {error.stderr.strip()}"
    return None


def _commit_experiments(root: Path, config: PipelineConfig, results: list[dict[str, Any]], baseline: str,
                        env: dict[str, str]) -> None:
    git = functools.partial(subprocess.run, cwd=root, capture_output=True, text=True)
    headline_path = Layout().stage_metrics(stages.PIPELINE[-1].name)
    for result in results:
        if "evaluate" not in result["metrics"]:  # failed
            continue
        workspace = runs.run_dir(root, config, result["arm"], result["seed"])
        files = {"params.yaml": (workspace / "params.yaml").read_text(encoding="utf-8"),
                 str(headline_path): json.dumps(stages.run_headline(result["metrics"]), indent=2) + "\n"}
        git(["git", "read-tree", baseline], env=env, check=True)
        for path, text in files.items():
            blob = git(["git", "hash-object", "-w", "--stdin"], input=text, env=env, check=True).stdout.strip()
            git(["git", "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}"], env=env, check=True)
        tree = git(["git", "write-tree"], env=env, check=True).stdout.strip()
        name = f"{config.profile}-{config.domain}-{result['arm']}-seed{result['seed']}"
        commit = git(["git", "commit-tree", tree, "-p", baseline, "-m", f"acqsynth compare: {name}"], env=env,
                     check=True).stdout.strip()
        git(["git", "update-ref", f"refs/exps/{baseline[:2]}/{baseline[2:]}/{name}", commit], check=True)


@flow(name="acqsynth-compare", flow_run_name=run_name)
def compare(params_path: str = "params.yaml", root: str = ".", seeds: list[int] | None = None,
            run_shared: bool = True, report_only: bool = False) -> dict[str, Any]:
    """Every run of the plan (or those of `seeds`: several processes may share the seeds out), then the report
    from every completed run. `report_only` runs nothing and reports what is computed; `run_shared` False takes the
    shared stages' outputs as they are (while another process is using them)."""
    started = time.perf_counter()
    logger = get_run_logger()
    root_path = Path(root)
    config = load_config(root_path / params_path)
    describe_run(config, root_path, "compare", one_seed=False)  # its runs span the seeds
    if run_shared and not report_only:
        for stage_task in SHARED_STAGES:
            run_stage_task(stage_task, config, root)
    plan = [] if report_only else arms.plan(root_path, config, seeds)
    workers = config.compare.workers
    with get_client(sync_client=True) as client:
        api_url = str(client.api_url)
    results = []
    with ProcessPoolTaskRunner(max_workers=workers, initializer=_start_run_process,
                               initargs=(max(1, len(os.sched_getaffinity(0)) // workers), api_url)) as runner:
        for wave in arms.waves(plan):
            futures = [(arm, seed, runner.submit(arm_run, {"root": root, "config": config, "arm": arm, "seed": seed}))
                       for arm, seed in wave]
            for arm, seed, future in futures:
                future.wait()
                # A failed run (say, nothing its generator wrote passed verification) is reported, not fatal to the
                # rest.
                if future.state.is_completed():
                    result = future.result()
                    outcome = "reused" if result["reused"] else "done"
                else:
                    error = future.result(raise_on_failure=False)
                    result = {"arm": arm.name, "group": arm.group, "seed": seed, "metrics": {}, "reused": False,
                              "failed": f"{type(error).__name__}: {error}"}
                    outcome = f"failed: {result['failed']}"
                results.append(result)
                log = logger.error if "failed" in result else logger.info
                log("[%d/%d] %s seed %d: %s", len(results), len(plan), arm.name, seed, outcome)
    done = {(r["arm"], r["seed"]) for r in results}
    results += [result for result in runs.completed_results(root_path, config)
                if (result["arm"], result["seed"]) not in done]
    command = " ".join(["acqsynth", "compare", *map(shlex.quote, sys.argv[2:])]) if sys.argv[1:2] == ["compare"] \
        else "acqsynth compare"
    if (not_recorded := record_experiments(root_path, config, results)) is not None:
        logger.warning(not_recorded)
    markdown = report.write_report(root_path, config, results, command, time.perf_counter() - started, report.DESIGN)
    create_markdown_artifact(markdown, key=f"acqsynth-compare-{config.domain}",
                             description="Comparison of the method with its baselines")
    return {"runs": len(results), "reused": sum(r["reused"] for r in results),
            "failed": sum("failed" in r for r in results),
            "report": str(report.report_dir(root_path, config.profile, config.domain) / "report.md")}
