"""How much of a pipeline run is orchestration, versioning and validation rather than model work; prints JSON.

    .venv/bin/python benchmarks/orchestration.py [--profile tiny]

In a fresh clone of this repository (so nothing is cached): the wall time of `acqsynth run`; the model work, i.e.
each stage's own time (metrics/<stage>.json) less its Great Expectations validations (reports/quality/*.json); the
rest is Prefect, DVC (`dvc commit`), process start and validation. Then the wall time of a no-op rerun through each
entry point: `acqsynth run` (every task cached) and `dvc repro` (nothing to run). Targets: under 10% overhead, under
15 s per no-op rerun. With `--dummy-gigabytes N`: an N GB file added to the base generator's checkpoint (a run then
redoes what reads it), and the no-op `acqsynth run` timed with the content-hash cache and without it
(ACQSYNTH_HASH_CACHE="": every check reads every file again).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def timed(command: list[str], cwd: Path, **env: str) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, **env})
    return time.perf_counter() - started


def add_dummy_weights(checkpoint: Path, gigabytes: float) -> None:
    chunk = os.urandom(1 << 24)
    with open(checkpoint / "dummy-weights.bin", "wb") as out:
        for _ in range(int(gigabytes * (1 << 30)) // len(chunk)):
            out.write(chunk)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--dummy-gigabytes", type=float, default=0.0)
    args = parser.parse_args()
    large: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp) / "acqsynth"
        subprocess.run(["git", "clone", "-q", str(REPO), str(workspace)], check=True)
        acqsynth, dvc = str(BIN / "acqsynth"), str(BIN / "dvc")
        total = timed([acqsynth, "run", "--profile", args.profile], workspace)
        stage_seconds = {path.stem: json.loads(path.read_text())["seconds"]
                         for path in (workspace / "metrics").glob("*.json")}
        validation = sum(json.loads(path.read_text())["acqsynth_seconds"]
                         for path in (workspace / "reports" / "quality").glob("*.json"))
        model_work = sum(stage_seconds.values()) - validation
        noop_run = timed([acqsynth, "run"], workspace)
        noop_run_unremembered = timed([acqsynth, "run"], workspace, ACQSYNTH_HASH_CACHE="")
        noop_repro = timed([dvc, "repro"], workspace)
        if args.dummy_gigabytes:
            add_dummy_weights(workspace / "models" / "base" / "generator", args.dummy_gigabytes)
            timed([acqsynth, "run"], workspace)
            large = {"with the hash cache": round(timed([acqsynth, "run"], workspace), 1),
                     "without it": round(timed([acqsynth, "run"], workspace, ACQSYNTH_HASH_CACHE=""), 1)}
    overhead = total - model_work
    print(json.dumps({
        "profile": args.profile,
        "run_seconds": round(total, 1),
        "model_work_seconds": round(model_work, 1),
        "validation_seconds": round(validation, 1),
        "orchestration_versioning_validation_seconds": round(overhead, 1),
        "overhead_share": round(overhead / total, 3),
        "target_overhead_share": 0.10,
        "stage_seconds": stage_seconds,
        "noop_rerun_seconds": {"acqsynth run": round(noop_run, 1), "dvc repro": round(noop_repro, 1),
                               "acqsynth run without the hash cache": round(noop_run_unremembered, 1)},
        "target_noop_seconds": 15,
        **({f"noop_run_seconds_with_{args.dummy_gigabytes:g}_gb_checkpoint": large} if large else {}),
    }, indent=2))


if __name__ == "__main__":
    main()
