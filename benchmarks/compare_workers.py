"""How many comparison runs to run at a time (`compare.workers`): one GRPO update of an arm alone with every core,
against the same update run by `workers` processes side by side with an equal share of the cores each; prints JSON.

    .venv/bin/python benchmarks/compare_workers.py [--root .] [--arm acqsyn_proximity] [--workers 2] [--out F]

`--root` is a workspace whose shared stages have run (data/prepared, data/seed_centroids.npz, models/base: after
`acqsynth compare` or `dvc repro seed_centroids`). Throughput is updates per minute; `speedup` is the side-by-side
throughput over the alone one. The load average at the start is reported: other work on the machine skews it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from acqsynth.comparison.arms import main_arms
from acqsynth.comparison.runs import run_config
from acqsynth.config import Layout, load_config, resolve


def _workspace(root: Path, into: Path) -> Path:
    for path in ("data/prepared", "data/seed_centroids.npz", "models/base"):
        target = into / path
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if (root / path).is_dir() else shutil.copy)(root / path, target)
    return into


def _one_update(workspace: str, params: str, threads: int) -> None:
    """In a child process: one policy_update with `threads` torch threads."""
    import torch

    from acqsynth import stages

    torch.set_num_threads(threads)
    stages.policy_update(resolve(json.loads(params), "benchmark"), Layout(Path(workspace)))


def _timed(jobs: list[tuple[Path, int]], params: str) -> float:
    """Seconds until every job (workspace, torch threads), each in its own process, is done."""
    started = time.perf_counter()
    processes = [subprocess.Popen([sys.executable, __file__, "--child", str(workspace), str(threads)],
                                  env={**os.environ, "OMP_NUM_THREADS": str(threads), "ACQSYNTH_PARAMS": params},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for workspace, threads in jobs]
    for process in processes:
        if process.wait() != 0:
            raise RuntimeError(f"a policy_update child failed (exit {process.returncode}); rerun it alone to see why")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("."))
    parser.add_argument("--arm", default="acqsyn_proximity")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    config = load_config(args.root / "params.yaml")
    arm = next((arm for arm in main_arms(config) if arm.name == args.arm), None)
    if arm is None:
        raise SystemExit(f"--arm: expected one of {[a.name for a in main_arms(config)]}, got {args.arm!r}")
    params = json.dumps(run_config(config, arm, seed=0).model_dump(mode="json"))
    cores = len(os.sched_getaffinity(0))
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as scratch:
        alone = _timed([(_workspace(args.root, Path(scratch) / "alone"), cores)], params)
        side_by_side = _timed([(_workspace(args.root, Path(scratch) / f"worker-{index}"),
                                max(1, cores // args.workers)) for index in range(args.workers)], params)
    result = {"arm": args.arm, "cores": cores, "workers": args.workers, "load_average_at_start": load,
              "alone_seconds": round(alone, 1), "side_by_side_seconds": round(side_by_side, 1),
              "speedup": round(args.workers * alone / side_by_side, 2)}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _one_update(sys.argv[2], os.environ["ACQSYNTH_PARAMS"], int(sys.argv[3]))
    else:
        main()
