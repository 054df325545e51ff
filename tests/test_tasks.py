"""The stage tasks' retry policy and cache keys (unit tests of our own logic over Prefect's types)."""

from pathlib import Path
import errno
from types import SimpleNamespace

import yaml

from acqsynth.config import profile_params, resolve
from acqsynth.quality.gates import GateFailed
from tasks.stages import is_transient, stage_cache_key, stage_spec
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


def test_every_dvc_stage_has_a_task_and_a_stage_function():
    from acqsynth import stages
    from tasks import stages as stage_tasks

    declared = list(yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"])
    assert declared == list(stages.STAGES) == [t.name for t in stage_tasks.PIPELINE]


def test_cache_key_follows_the_stage_params_and_deps(tmp_path):
    (tmp_path / "dvc.yaml").write_text((REPO / "dvc.yaml").read_text())
    config = resolve({**profile_params("smoke")})
    context = SimpleNamespace(task=SimpleNamespace(name="finetune", version="1"))

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
    assert "data/selected.parquet" in stage_spec(tmp_path, "finetune")["deps"]
    assert key(config) != base
