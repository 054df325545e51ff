"""Real `dvc repro` of the smoke profile in a temporary git repository: a full run, a no-op rerun, a finetune
parameter change that reruns only finetune and what follows, an edited module or quality suite that changes exactly
the stages that run it, and `acqsynth run` leaving `dvc status` clean."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from acqsynth.stages import PIPELINE
from acqsynth.config import profile_params, write_params
from tests.conftest import REPO

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
STAGE_NAMES = {stage.name for stage in PIPELINE}


def _run(args, cwd):
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    env.pop("PREFECT_HOME", None)
    env.pop("PREFECT_API_URL", None)
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result.stdout + result.stderr


def _dvc(*args, cwd):
    return _run([sys.executable, "-m", "dvc", *args], cwd)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("dvc_repo")
    for name in ("acqsynth", "tasks", "flows"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".dvcignore", ".gitignore", "pyproject.toml"):
        shutil.copy(REPO / name, root / name)
    write_params(root / "params.yaml", profile_params("smoke"))
    _run(["git", "init", "-q"], root)
    _dvc("init", "-q", cwd=root)
    _run(["git", "add", "-A"], root)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"], root)
    return root


def _ran(output):
    return {line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")}


def test_repro_runs_everything_then_nothing_then_only_what_changed(repo):
    first = _dvc("repro", cwd=repo)
    assert _ran(first) == STAGE_NAMES
    assert (repo / "reports" / "summary.md").is_file()

    second = _dvc("repro", cwd=repo)
    assert _ran(second) == set()

    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["finetune"]["learning_rate"] = params["finetune"]["learning_rate"] / 2
    write_params(repo / "params.yaml", params)
    third = _dvc("repro", cwd=repo)
    assert _ran(third) == {"finetune", "evaluate", "report"}
    assert "up to date" in _dvc("status", cwd=repo)

    # Another target domain reuses the splits and base models (they hold all three domains). The smoke generator
    # rarely writes a verified program, so this run fine-tunes on the code seeds to stay deterministic.
    _run(["git", "add", "-A"], repo)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "math run"], repo)
    fourth = _dvc("exp", "run", "-S", "domain=code", "-S", "select.source=seed", cwd=repo)
    assert _ran(fourth) == STAGE_NAMES - {"prepare", "build_models"}
    evaluation = json.loads((repo / "metrics" / "evaluate.json").read_text())
    assert evaluation["domain"] == "code" and set(evaluation["forgetting"]) == {"math", "mcq"}


@pytest.mark.parametrize(("module", "stages"), [("acqsynth/finetune.py", {"finetune"}),
                                               ("acqsynth/report.py", {"report"}),
                                               ("acqsynth/models/loading.py", STAGE_NAMES - {"prepare", "report"}),
                                               ("acqsynth/quality/suites/selected.py", {"select", "finetune"})])
def test_editing_a_module_changes_exactly_the_stages_that_run_it(repo, module, stages):
    """dvc.yaml's code deps come from the import graph: the stale deps measured before (evaluate and finetune did
    not list acqsynth/models) are gone."""
    path = repo / module
    original = path.read_text()
    try:
        path.write_text(original + "\n# edited\n")
        status = json.loads(_dvc("status", "--json", cwd=repo).strip().splitlines()[-1])
    finally:
        path.write_text(original)
    changed = {name for name, changes in status.items() for change in changes if isinstance(change, dict)
               for dep in change.get("changed deps", {}) if module == dep or module.startswith(dep + "/")}
    assert changed == stages


def test_pipeline_flow_leaves_dvc_status_clean(repo):
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["evaluate"]["batch_size"] = params["evaluate"]["batch_size"] + 1
    write_params(repo / "params.yaml", params)
    assert "evaluate" in _dvc("status", cwd=repo)
    _run(["acqsynth", "run"], repo)
    assert "up to date" in _dvc("status", cwd=repo)
    # The run is a DVC experiment (beside the `dvc exp run` of the first test), and `dvc exp show` lists its
    # headline metrics alone.
    [baseline] = json.loads(_dvc("exp", "show", "--json", cwd=repo))[1:]
    experiments = [exp["revs"][0]["data"] for exp in baseline["experiments"]]
    [experiment] = [exp for exp in experiments if exp["params"]["params.yaml"]["data"]["evaluate"]["batch_size"]
                    == params["evaluate"]["batch_size"]]
    assert len(experiments) == 2 and list(experiment["metrics"]) == ["metrics/report.json"]
    headline = experiment["metrics"]["metrics/report.json"]["data"]
    assert {"in_domain_before_accuracy", "in_domain_after_accuracy", "verified_rate", "copy_rate"} <= set(headline)


def test_push_then_pull_in_a_fresh_clone_restores_every_artifact(repo, tmp_path):
    from acqsynth.artifacts import content_hash

    _dvc("remote", "add", "-f", "-d", "store", str(tmp_path / "remote"), cwd=repo)
    _dvc("push", cwd=repo)
    _run(["git", "add", "-A"], repo)
    _run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "run"], repo)
    clone = tmp_path / "clone"
    _run(["git", "clone", "-q", str(repo), str(clone)], tmp_path)
    assert not (clone / "models").exists()
    _dvc("pull", cwd=clone)
    outs = [out for stage in yaml.safe_load((repo / "dvc.yaml").read_text())["stages"].values()
            for entry in stage["outs"] for out in entry]
    assert "models/base" in outs and "data/scored.parquet" in outs
    for out in outs:
        assert content_hash(clone / out) == content_hash(repo / out), out
    assert "up to date" in _dvc("status", cwd=clone)
