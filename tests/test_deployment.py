"""A real local Prefect server, `acqsynth serve` of prefect.yaml, a triggered run of the smoke profile that
completes, then a clean shutdown (serve first, then the server)."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from acqsynth.config import profile_params, write_params
from tests.conftest import REPO

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_healthy(url: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the Prefect server exited while starting"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"no healthy Prefect server at {url} after {timeout} s")


def _stop(process: subprocess.Popen, timeout: float = 180) -> int:
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def test_served_deployment_runs_the_smoke_profile(tmp_path):
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    for name in ("dvc.yaml", "prefect.yaml"):
        shutil.copy(REPO / name, workspace / name)
    shutil.copytree(REPO / "acqsynth", workspace / "acqsynth", ignore=shutil.ignore_patterns("__pycache__"))
    write_params(workspace / "params.yaml", profile_params("smoke"))
    port = _free_port()
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PREFECT_HOME": str(tmp_path / "home"),
           "PREFECT_API_URL": f"http://127.0.0.1:{port}/api", "DO_NOT_TRACK": "1",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    logs = {name: (tmp_path / f"{name}.log").open("w") for name in ("server", "serve")}
    server = subprocess.Popen(["acqsynth", "server", "--port", str(port)], cwd=workspace, env=env,
                              stdout=logs["server"], stderr=subprocess.STDOUT)
    serve = None
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/api/health", server, timeout=180)
        serve = subprocess.Popen(["acqsynth", "serve"], cwd=workspace, env=env, stdout=logs["serve"],
                                 stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while True:  # the deployment exists once serve has registered it
            run = subprocess.run(["prefect", "deployment", "run", "acqsynth-pipeline/nightly", "--watch",
                                  "--watch-timeout", "600"], cwd=workspace, env=env, capture_output=True,
                                 text=True)
            if run.returncode == 0 or "not found" not in (run.stdout + run.stderr).lower():
                break
            assert time.monotonic() < deadline, "serve never registered the deployment"
            time.sleep(3)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        assert "Completed" in run.stdout
        assert (workspace / "reports" / "summary.md").is_file()
        assert (workspace / "metrics" / "evaluate.json").is_file()
    finally:
        if serve is not None:
            serve_code = _stop(serve)
        server_code = _stop(server)
        for handle in logs.values():
            handle.close()
    assert serve_code in (0, 130, -signal.SIGINT), (tmp_path / "serve.log").read_text()[-3000:]
    assert server_code in (0, 130, -signal.SIGINT), (tmp_path / "server.log").read_text()[-3000:]
