"""One acqsynth process at a time per workspace: the lock names its holder and dies with it."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from acqsynth.artifacts import LOCK_FILE, WorkspaceBusy, workspace_lock


def _holder(root, shared=False):
    code = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from acqsynth.artifacts import workspace_lock
        with workspace_lock(Path({str(root)!r}), shared={shared}):
            print("held", flush=True)
            time.sleep(120)
    """)
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_held_workspace_names_its_holder_and_a_killed_holder_frees_it(tmp_path):
    holder = _holder(tmp_path)
    try:
        with pytest.raises(WorkspaceBusy, match=rf"{LOCK_FILE}: the workspace is in use by pid {holder.pid} \("):
            with workspace_lock(tmp_path):
                pass
        with pytest.raises(WorkspaceBusy):
            with workspace_lock(tmp_path, shared=True):
                pass
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    with workspace_lock(tmp_path):  # the killed holder's lock went with it
        assert f"pid {os.getpid()}" in (tmp_path / LOCK_FILE).read_text()


def test_shared_holders_exclude_only_a_writer(tmp_path):
    reader = _holder(tmp_path, shared=True)
    try:
        with workspace_lock(tmp_path, shared=True):
            with pytest.raises(WorkspaceBusy):
                with workspace_lock(tmp_path):
                    pass
    finally:
        reader.kill()
        reader.wait()


def test_a_stage_refuses_a_busy_workspace(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from acqsynth.config import profile_params, write_params
    from flows.cli import app

    write_params(tmp_path / "params.yaml", profile_params("smoke"))
    holder = _holder(tmp_path)
    try:
        monkeypatch.chdir(tmp_path)
        for command in (["stage", "prepare"], ["run"], ["compare"]):
            result = CliRunner().invoke(app, command)
            assert result.exit_code == 2, result.output
            assert f"the workspace is in use by pid {holder.pid}" in result.output
        assert not (tmp_path / "data").exists()
    finally:
        holder.kill()
        holder.wait()
