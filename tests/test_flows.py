"""A real Prefect flow run of the smoke profile (its name, tags, artifacts and progress lines read back from the
server); a second run that reuses every stage's cached result; a parameter change that reruns exactly the stages
downstream of it, as `dvc repro` does."""

import shutil
import subprocess

import pytest
import yaml

from acqsynth.config import Layout, profile_params, write_params
from acqsynth.stages import PIPELINE
from tests.conftest import REPO


@pytest.fixture(scope="module")
def prefect_server():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


def _workspace(root):
    shutil.copy(REPO / "dvc.yaml", root / "dvc.yaml")
    shutil.copytree(REPO / "acqsynth", root / "acqsynth", ignore=shutil.ignore_patterns("__pycache__"))
    write_params(root / "params.yaml", profile_params("smoke"))


@pytest.fixture(scope="module")
def completed_run(prefect_server, tmp_path_factory):
    """A smoke workspace after one complete flow run. The tests that change something after a run work on a copy,
    whose stages the cache serves (its key is the content of what a stage reads, not where), so each does not pay
    for a run of its own."""
    from flows.pipeline import pipeline

    root = tmp_path_factory.mktemp("completed")
    _workspace(root)
    assert pipeline(params_path="params.yaml", root=str(root), return_state=True).is_completed()
    return root


def _copy_of_completed_run(completed_run, tmp_path):
    shutil.copytree(completed_run, tmp_path, dirs_exist_ok=True)
    return tmp_path


def _git_commit(root) -> str:
    """Make root a git checkout of its files; its short revision."""
    for command in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        subprocess.run(["git", *command], cwd=root, check=True)
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, check=True, capture_output=True,
                          text=True).stdout.strip()


def _output_mtimes(root):
    return {p: p.stat().st_mtime_ns for p in (root / "data").rglob("*") if p.is_file()} | {
        p: p.stat().st_mtime_ns for p in (root / "models").rglob("*") if p.is_file()}


def _executed_stages(flow_state) -> set[str]:
    """The stages whose task really ran (not served from the cache) in one flow run."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    flow_run_id = flow_state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    assert {run.name.rsplit("-", 1)[0] for run in runs} == {stage.name for stage in PIPELINE}
    return {run.name.rsplit("-", 1)[0] for run in runs if run.state.name != "Cached"}


def test_pipeline_flow_runs_then_reuses_the_cache(prefect_server, tmp_path):
    from flows.pipeline import pipeline

    _workspace(tmp_path)
    revision = _git_commit(tmp_path)
    state = pipeline(params_path="params.yaml", root=str(tmp_path), return_state=True)
    assert state.is_completed(), state.message
    first = state.result()
    assert set(first) == {stage.name for stage in PIPELINE}
    assert Layout(tmp_path).report.is_file()
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (ArtifactFilter, ArtifactFilterFlowRunId, LogFilter,
                                                LogFilterFlowRunId)

    from acqsynth.config import load_config

    config = load_config(tmp_path / "params.yaml")
    flow_run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)
        found = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(
            any_=[flow_run_id])))
        logs = [log.message for log in client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(
            any_=[flow_run_id])), limit=200)]
    assert run.name == f"smoke {config.domain} seed {config.seed}"  # named by what it ran, not two random words
    assert {"profile:smoke", f"domain:{config.domain}", f"seed:{config.seed}", f"git:{revision}"} <= set(run.tags)
    by_key = {artifact.key: artifact for artifact in found}
    assert {"acqsynth-parameters", "acqsynth-report", "acqsynth-stage-metrics", "acqsynth-data",
            "acqsynth-checkpoints", "acqsynth-quality", "acqsynth-report-file"} <= set(by_key)
    assert f"domain: {config.domain}" in by_key["acqsynth-parameters"].data
    assert "](data:image/png;base64,iVBOR" in by_key["acqsynth-report"].data  # the plot inside, not a dead link
    assert f"]({(tmp_path / 'data').resolve().as_uri()})" in by_key["acqsynth-data"].data  # a link (markdown)
    assert by_key["acqsynth-stage-metrics"].type == "table" and "policy_update" in by_key["acqsynth-stage-metrics"].data
    assert any(message.startswith("pre-train student: ") and "(100%)" in message for message in logs)  # progress
    written = _output_mtimes(tmp_path)

    second = pipeline(params_path="params.yaml", root=str(tmp_path), return_state=True)
    assert second.is_completed()
    assert _executed_stages(second) == set()
    assert second.result() == first  # every stage's cached result
    assert _output_mtimes(tmp_path) == written  # and nothing was rewritten

    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["finetune"]["learning_rate"] /= 2
    write_params(tmp_path / "params.yaml", params)
    third = pipeline(params_path="params.yaml", root=str(tmp_path), return_state=True)
    assert third.is_completed()
    assert _executed_stages(third) == {"finetune", "evaluate", "report"}


def test_a_changed_output_is_not_trusted_to_the_cache(completed_run, tmp_path):
    """Deleting an artifact makes its stage run again even though its inputs are unchanged."""
    from flows.pipeline import pipeline

    _copy_of_completed_run(completed_run, tmp_path)
    generated = Layout(tmp_path).generated
    generated.unlink()
    state = pipeline(params_path="params.yaml", root=str(tmp_path), return_state=True)
    assert state.is_completed()
    assert "generate" in _executed_stages(state)
    assert generated.is_file()


def test_bad_params_fail_before_any_work(prefect_server, tmp_path):
    from acqsynth.config import ConfigError
    from flows.pipeline import pipeline

    _workspace(tmp_path)
    (tmp_path / "params.yaml").write_text("profile: smoke\nfinetune: {epochs: -1}\n")
    with pytest.raises(ConfigError, match="finetune.epochs"):
        pipeline(params_path="params.yaml", root=str(tmp_path))
    assert not (tmp_path / "data").exists()


def test_failed_gate_fails_the_run_keeps_the_last_good_artifact_and_links_the_report(completed_run, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from acqsynth.artifacts import content_hash
    from acqsynth.quality.gates import GateFailed
    from flows.pipeline import pipeline

    _copy_of_completed_run(completed_run, tmp_path)
    layout = Layout(tmp_path)
    good = content_hash(layout.generated)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["generate"]["min_parse_rate"] = 1.0  # the smoke generator parses well below that
    write_params(tmp_path / "params.yaml", params)
    with pytest.raises(GateFailed, match="quality gate 'generate' failed for .*generated.parquet"):
        pipeline(params_path="params.yaml", root=str(tmp_path))
    assert content_hash(layout.generated) == good
    assert (layout.quality_reports / "generate.json").is_file()
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[
            "gate-failure-generate"])))
    assert artifacts and "expect_column_mean_to_be_between" in artifacts[0].data
    assert "full report:" in artifacts[0].data


def test_the_cli_prints_the_projects_errors_as_their_message_alone(prefect_server, tmp_path, monkeypatch):
    """A missing artifact or a failed gate: exit 1 and the message that names the file, with no traceback (Prefect's
    logs keep their one-line record of the failure); --debug shows the traceback."""
    import pandas as pd
    from typer.testing import CliRunner

    from acqsynth import artifacts
    from acqsynth.quality.gates import GateFailed
    from flows.cli import app

    monkeypatch.chdir(tmp_path)
    write_params(tmp_path / "params.yaml", profile_params("smoke"))
    missing = CliRunner().invoke(app, ["stage", "select"])
    assert missing.exit_code == 1, missing.output
    assert "data/scored.parquet: not found; run the stage that writes it first" in missing.output
    assert "Traceback" not in missing.output and len(missing.output.splitlines()) < 30
    scored = {"id": ["a"], "question": ["q"], "reasoning": ["r"], "answer": ["1"], "acquisition_score": [float("nan")]}
    artifacts.write_table(Layout(tmp_path).scored, pd.DataFrame(scored))
    failed = CliRunner().invoke(app, ["stage", "select"])
    assert failed.exit_code == 1 and "quality gate 'select_reads_scored' failed for" in failed.output, failed.output
    assert "Traceback" not in failed.output
    debug = CliRunner().invoke(app, ["--debug", "stage", "select"])
    assert isinstance(debug.exception, GateFailed)  # raised, traceback and all


def test_transient_faults_are_retried_and_deterministic_ones_are_not(completed_run, tmp_path, monkeypatch):
    from acqsynth.verify import samples
    from flows.pipeline import pipeline

    _copy_of_completed_run(completed_run, tmp_path)
    real_check, calls = samples.check_samples, []

    def flaky_check(*args, **kwargs):  # what verify runs on each shard
        calls.append(1)
        if len(calls) == 1:
            raise OSError("Input/output error")  # e.g. a network file system hiccup
        return real_check(*args, **kwargs)

    monkeypatch.setattr(samples, "check_samples", flaky_check)
    (tmp_path / "data" / "verified.parquet").unlink()  # so that verify runs instead of being cached
    assert pipeline(params_path="params.yaml", root=str(tmp_path), return_state=True).is_completed()
    assert len(calls) >= 2  # the failed try, then the retry's shards

    def broken_check(*args, **kwargs):
        calls.append(1)
        raise ValueError("a bug, not a hiccup")

    calls.clear()
    monkeypatch.setattr(samples, "check_samples", broken_check)
    (tmp_path / "data" / "verified.parquet").unlink()
    with pytest.raises(ValueError, match="a bug"):
        pipeline(params_path="params.yaml", root=str(tmp_path))
    assert len(calls) == 1  # not retried


def test_dvc_lock_records_only_a_run_of_params_yaml(tmp_path, monkeypatch):
    """A run with `--params other.yaml` must not write dvc.lock, which would then claim params.yaml's values made
    outputs they did not make."""
    from acqsynth.config import load_config, merge
    from flows import pipeline as pipeline_module

    calls = []
    def run(args, **kwargs):
        calls.append(args)
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setattr(pipeline_module.subprocess, "run", run)
    (tmp_path / ".dvc").mkdir()
    write_params(tmp_path / "params.yaml", profile_params("smoke"))
    other = merge(profile_params("smoke"), {"generate": {"temperature": 0.7}})
    write_params(tmp_path / "other.yaml", other)
    reason = pipeline_module.record_in_dvc(tmp_path, load_config(tmp_path / "other.yaml"))
    assert reason.startswith(f"dvc.lock not updated: this run's parameters differ from {tmp_path / 'params.yaml'}")
    assert calls == []
    assert pipeline_module.record_in_dvc(tmp_path, load_config(tmp_path / "params.yaml")) is None
    assert calls[0][-3:] == ["commit", "--force", "--quiet"]
    assert calls[1][3:5] == ["exp", "save"] and "metrics/report.json" in calls[1]


def test_a_stage_logs_a_headline_not_its_whole_metrics():
    from flows.pipeline import headline

    metrics = {"verified_rate": 0.41666, "n": 1536, "by_check": {"grounding": 3}, "seconds": 12.0}
    assert headline(metrics) == "verified_rate 0.4167, n 1536, seconds 12, ..."
    assert headline({"a": 1, "b": 2}, limit=1) == "a 1, ..."
    assert headline({"a": 1}) == "a 1"


def test_a_run_is_tagged_without_a_revision_outside_git_or_without_git(tmp_path, monkeypatch):
    from acqsynth.config import resolve
    from flows.pipeline import run_tags

    config = resolve(profile_params("smoke"))
    expected = ["profile:smoke", f"domain:{config.domain}", f"seed:{config.seed}"]
    assert run_tags(config, tmp_path) == expected  # not a checkout
    monkeypatch.setenv("PATH", str(tmp_path))  # no git at all
    assert run_tags(config, REPO) == expected
