"""The stage tasks' retry policy and cache keys (unit tests of our own logic over Prefect's types)."""

import errno
import shutil
from pathlib import Path
from types import SimpleNamespace

import yaml

from acqsynth.config import profile_params, resolve
from acqsynth.quality.gates import GateFailed
from tasks.stages import is_transient, stage_cache_key
from tests.conftest import REPO


def _failed(error):
    return SimpleNamespace(data=error)


def test_only_transient_faults_are_retried():
    assert is_transient(None, None, _failed(OSError("I/O error")))
    assert is_transient(None, None, _failed(ConnectionResetError("worker went away")))
    for error in (FileNotFoundError("params.yaml"), PermissionError("data"), ValueError("bad param"),
                  GateFailed("quality gate 'verify' failed"), OSError(errno.ENOSPC, "No space left on device"),
                  OSError(errno.EROFS, "Read-only file system"), OSError(errno.EDQUOT, "Disk quota exceeded")):
        assert not is_transient(None, None, _failed(error))
    assert not is_transient(None, None, _failed(None))


def test_dvc_yaml_is_the_rendering_of_the_stage_declarations():
    from acqsynth import stages
    from acqsynth.dvc_yaml import render
    from tasks import stages as stage_tasks

    assert (REPO / "dvc.yaml").read_text() == render(), "dvc.yaml is stale: run `acqsynth dvc-yaml`"
    declared = list(yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"])
    assert declared == [stage.name for stage in stages.PIPELINE] == [task.name for task in stage_tasks.PIPELINE]


def test_cache_key_follows_the_stage_params_reads_and_code(tmp_path, monkeypatch):
    from acqsynth import imports

    config = resolve({**profile_params("smoke")})
    context = SimpleNamespace(task=SimpleNamespace(name="finetune"))

    def key(cfg):
        return stage_cache_key(context, {"config": cfg, "root": str(tmp_path)})

    base = key(config)
    assert key(config) == base
    changed_evaluate = resolve({**profile_params("smoke"), "evaluate": {"batch_size": 3}})
    assert key(changed_evaluate) == base  # not a finetune param
    changed_finetune = resolve({**profile_params("smoke"), "finetune": {"learning_rate": 1e-5}})
    assert key(changed_finetune) != base
    selected = Path(tmp_path / "data" / "selected.parquet")
    selected.parent.mkdir()
    selected.write_bytes(b"new input")
    with_input = key(config)
    assert with_input != base
    # A copy of the checkout whose model loader (which finetune runs, through acqsynth.models) is edited.
    checkout = tmp_path / "checkout"
    shutil.copytree(REPO / "acqsynth", checkout / "acqsynth", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(imports, "ROOT", checkout)
    assert key(config) == with_input
    loader = checkout / "acqsynth" / "models" / "loading.py"
    loader.write_text(loader.read_text() + "\n# edited\n")
    edited = key(config)
    assert edited != with_input
    # A quality suite is code of the stages it guards only: verified.py is not finetune's, selected.py is.
    for suite, guards_finetune in (("verified", False), ("selected", True)):
        path = checkout / "acqsynth" / "quality" / "suites" / f"{suite}.py"
        path.write_text(path.read_text() + "\n# edited\n")
        assert (key(config) != edited) == guards_finetune, suite
        edited = key(config)
