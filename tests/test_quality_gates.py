"""Quality gates: real Great Expectations validations of small frames, through checkpoints of a file-backed context
that build Data Docs pages."""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from acqsynth.quality.gates import GateFailed, gate, validate_frame
from acqsynth.quality.suites.examples import examples_expectations
from acqsynth.quality.suites.generated import generated_expectations
from acqsynth.quality.suites.metrics import metrics_expectations
from acqsynth.quality.suites.rollouts import rollouts_expectations
from acqsynth.quality.suites.scored import scored_expectations
from acqsynth.quality.suites.selected import selected_expectations
from acqsynth.quality.suites.verified import kept_expectations, verified_expectations

R_MIN, R_MAX = 0.0, 10.0
# One GX project for the suites' checks (a context per project, as in a run).
PROJECT = Path(tempfile.mkdtemp(prefix="acqsynth-gx-"))


def validate(df, expectations, name):
    return validate_frame(df, expectations, name, PROJECT, PROJECT / "docs")


def examples_frame(n: int = 4) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [f"ex-{i}" for i in range(n)],
            "domain": ["math"] * n,
            "skill": ["add"] * n,
            "question": [f"What is {i} + 1?" for i in range(n)],
            "reasoning": [f"{i} + 1 = <<{i}+1={i + 1}>>{i + 1}" for i in range(n)],
            "answer": [str(i + 1) for i in range(n)],
            "tests": [""] * n,
            "source": ["procedural"] * n,
        }
    )


def rollouts_frame(n: int = 40) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "step": [i // 4 for i in range(n)],
            "prompt_id": [f"p-{i // 4}" for i in range(n)],
            "completion": ["<question>q</question>"] * n,
            "parsed": [i % 2 == 0 for i in range(n)],
            "verified": [i % 4 == 0 for i in range(n)],
            "format_reward": [float(i % 2 == 0) for i in range(n)],
            "acquisition_reward": np.linspace(R_MIN, R_MAX, n),
            "reward": np.linspace(R_MIN, R_MAX + 1.0, n),
            "difficulty": ["1 steps" if i % 2 == 0 else None for i in range(n)],
            "acquisition_percentile": [0.5 if i % 4 == 0 else np.nan for i in range(n)],
        }
    )


def generated_frame() -> pd.DataFrame:
    parsed = [True, True, True, False]
    return pd.DataFrame(
        {
            "id": ["g-0", "g-1", "g-2", "g-3"],
            "seed_id": ["ex-0", "ex-1", "ex-2", "ex-3"],
            "generator": ["tiny-gen"] * 4,
            "completion": ["<question>q</question>..."] * 3 + ["garbled"],
            "parsed": parsed,
            "question": [q if p else None for q, p in zip(["1+1?", "2+2?", "3+3?", "x"], parsed)],
            "reasoning": [r if p else None for r, p in zip(["1+1=2", "2+2=4", "3+3=7", "x"], parsed)],
            "answer": [a if p else None for a, p in zip(["2", "4", "7", "x"], parsed)],
        }
    )


def verified_frame() -> pd.DataFrame:
    df = generated_frame()
    df["verified"] = [True, True, False, False]
    df["reason"] = ["", "", "answer mismatch: expected 6", "not parsed"]
    df["verification"] = ["calculator: 1 annotation(s) recomputed", "calculator: 2 annotation(s) recomputed", "", ""]
    return df


def scored_frame() -> pd.DataFrame:
    df = verified_frame()
    df["confidence"] = [1.5, 2.0, 9.5, 0.0]
    df["gradient_magnitude"] = [0.5, 3.0, 120.0, 0.0]
    df["acquisition_score"] = [0.3, -1.2, 4.0, 0.0]
    return df


def selected_frame() -> pd.DataFrame:
    """Two synthetic samples with their provenance and one pool sample without (nulls)."""
    return pd.DataFrame({"id": ["s-0", "s-1", "p-2"], "source": ["synthetic", "synthetic", "pool"],
                         "question": ["q0", "q1", "q2"], "reasoning": "r", "answer": "1", "prompt": "Q: q",
                         "completion": "r #### 1", "selection_score": [0.5, np.nan, 0.1],
                         "seed_id": ["seed-1", "seed-2", None], "generator": ["g", "g", None],
                         "verification": ["sandbox: its 2 asserts pass", "sandbox: its 3 asserts pass", None],
                         "confidence": [1.5, 2.0, np.nan], "acquisition_score": [0.3, 0.1, np.nan]})


def metrics_frame() -> pd.DataFrame:
    return pd.DataFrame({"in_domain_accuracy": [0.42], "forget_accuracy": [0.9], "n_eval": [50]})


SCORE_RANGES = {"confidence": (R_MIN, R_MAX), "gradient_magnitude": (0.0, None)}

SUITES: dict[str, tuple[Callable[[], pd.DataFrame], Callable[[pd.DataFrame], list]]] = {
    "examples": (examples_frame, lambda df: examples_expectations()),
    "rollouts": (rollouts_frame, lambda df: rollouts_expectations(R_MIN, R_MAX)),
    "generated": (generated_frame, lambda df: generated_expectations(min_parse_rate=0.5)),
    "verified": (verified_frame, lambda df: verified_expectations(min_verified_rate=0.5)),
    "scored": (scored_frame, lambda df: scored_expectations(SCORE_RANGES)),
    "metrics": (metrics_frame, lambda df: metrics_expectations(df.columns)),
    "selected": (selected_frame, lambda df: selected_expectations(["confidence"])),
}


def run_suite(kind: str, mutate: Callable[[pd.DataFrame], pd.DataFrame] = lambda df: df):
    make, expectations = SUITES[kind]
    df = mutate(make())
    return validate(df, expectations(df), kind)


def test_timing_first_and_later_validation():
    df = examples_frame(200)
    start = time.perf_counter()
    assert validate(df, examples_expectations(), "timing").success
    first = time.perf_counter() - start
    start = time.perf_counter()
    assert validate(df, examples_expectations(), "timing").success
    later = time.perf_counter() - start
    print(f"\nGX validation of 200 rows: first {first:.3f}s (creates the context), later {later:.3f}s")


@pytest.mark.parametrize("kind", sorted(SUITES))
def test_good_frames_pass(kind):
    report = run_suite(kind)
    assert report.success, report.failures
    assert report.failures == []
    assert report.result_json["success"] is True


@pytest.mark.parametrize("dtype", ["str", "string", "string[pyarrow]", object])
def test_string_dtypes_pass(dtype):
    df = examples_frame().astype(dtype)
    assert validate(df, examples_expectations(), "examples").success


def test_parquet_round_trip_passes(tmp_path):
    for kind in ("examples", "verified"):
        make, expectations = SUITES[kind]
        make().to_parquet(tmp_path / f"{kind}.parquet")
        df = pd.read_parquet(tmp_path / f"{kind}.parquet")
        report = validate(df, expectations(df), kind)
        assert report.success, report.failures


def _set(column: str, row: int, value):
    def mutate(df: pd.DataFrame) -> pd.DataFrame:
        if isinstance(df[column].dtype, pd.StringDtype):  # so it can hold a non-str value
            df[column] = df[column].astype(object)
        df.loc[row, column] = value
        return df

    return mutate


FAILURES = {
    "duplicate id": ("examples", _set("id", 1, "ex-0"), "id"),
    "null question": ("examples", _set("question", 2, None), "question"),
    "empty question": ("examples", _set("question", 2, ""), "question"),
    "int in str column": ("examples", _set("skill", 0, 7), "skill"),
    "int column for str": ("examples", lambda df: df.assign(answer=range(len(df))), "answer"),
    "missing column": ("verified", lambda df: df.drop(columns="reason"), "reason"),
    "no rows": ("examples", lambda df: df.iloc[:0], "table"),
    "parse rate below floor": ("generated", lambda df: df.assign(parsed=[True, False, False, False]), "parsed"),
    "parsed row without answer": ("generated", _set("answer", 0, None), "answer"),
    "verified rate below floor": ("verified", lambda df: df.assign(verified=[True, False, False, False]), "verified"),
    "verified row with reason": ("verified", _set("reason", 0, "oops"), "reason"),
    "rejected row without reason": ("verified", _set("reason", 2, ""), "reason"),
    "verified row without what it passed": ("verified", _set("verification", 1, ""), "verification"),
    "rejected row with what it passed": ("verified", _set("verification", 3, "sandbox: its 1 asserts pass"),
                                         "verification"),
    "verified row without answer": ("verified", _set("answer", 1, None), "answer"),
    "reward +inf": ("rollouts", _set("acquisition_reward", 3, np.inf), "acquisition_reward"),
    "reward NaN on a verified rollout": ("rollouts", _set("reward", 4, np.nan), "reward"),
    "reward out of range": ("rollouts", _set("acquisition_reward", 7, R_MAX + 0.5), "acquisition_reward"),
    "negative step": ("rollouts", _set("step", 0, -1), "step"),
    "percentile above 1": ("rollouts", _set("acquisition_percentile", 0, 1.5), "acquisition_percentile"),
    "score -inf": ("scored", _set("acquisition_score", 1, -np.inf), "acquisition_score"),
    "confidence NaN": ("scored", _set("confidence", 0, np.nan), "confidence"),
    "gradient +inf": ("scored", _set("gradient_magnitude", 2, np.inf), "gradient_magnitude"),
    "gradient negative": ("scored", _set("gradient_magnitude", 1, -0.5), "gradient_magnitude"),
    "duplicate scored id": ("scored", _set("id", 3, "g-0"), "id"),
    "selection score +inf": ("selected", _set("selection_score", 0, np.inf), "selection_score"),
    "selection score -inf": ("selected", _set("selection_score", 2, -np.inf), "selection_score"),
    "empty completion": ("selected", _set("completion", 1, ""), "completion"),
    "reward of a selected sample +inf": ("selected", _set("confidence", 0, np.inf), "confidence"),
    "accuracy 1.2": ("metrics", lambda df: df.assign(in_domain_accuracy=[1.2]), "in_domain_accuracy"),
    "accuracy null": ("metrics", lambda df: df.assign(forget_accuracy=[np.nan]), "forget_accuracy"),
}


def test_an_unverified_rollout_may_have_no_reward():
    assert run_suite("rollouts", _set("reward", 5, np.nan)).success  # gate mode: no part in its group's advantage


@pytest.mark.parametrize("case", sorted(FAILURES))
def test_bad_frames_fail_naming_the_column(case):
    kind, mutate, column = FAILURES[case]
    report = run_suite(kind, mutate)
    assert not report.success
    assert any(line.startswith(f"{column}: ") for line in report.failures), report.failures


def test_failure_line_is_readable():
    def mutate(df):
        df.loc[3, "acquisition_reward"] = np.inf
        df.loc[4, "acquisition_reward"] = -1.0
        return df

    report = run_suite("rollouts", mutate)
    assert report.failures == [
        "acquisition_reward: expect_column_values_to_not_be_in_set(value_set=[inf, -inf]) failed: "
        "1 of 40 rows (2.5%), e.g. [inf]",
        "acquisition_reward: expect_column_values_to_be_between(min=0.0, max=10.0) failed: "
        "2 of 40 rows (5.0%), e.g. [inf, -1.0]",
    ]


def test_gate_writes_report_and_passes(tmp_path):
    report = gate(examples_frame(), examples_expectations(), "seed", tmp_path / "seed.parquet", tmp_path,
                  tmp_path / "reports")
    assert report.success
    written = json.loads((tmp_path / "reports" / "seed.json").read_text())
    assert written["success"] is True and written["failures"] == []
    assert sorted(p.name for p in (tmp_path / "reports").iterdir()) == ["docs", "seed.json"]
    # GX-native: the suite, validation definition and checkpoint saved by name, and the result's Data Docs page.
    for kind in ("expectations", "validation_definitions", "checkpoints"):
        assert (tmp_path / "gx" / kind / "seed.json").is_file()
    page = Path(written["data_docs"])
    assert page.is_relative_to(tmp_path / "reports" / "docs" / "validations" / "seed") and page.is_file()
    assert re.search(r"Status:</span>\s*<i[^>]*text-success[^>]*></i>\s*Succeeded", page.read_text())
    assert "seed" in (tmp_path / "reports" / "docs" / "index.html").read_text()


def test_gate_writes_report_and_raises(tmp_path):
    df = rollouts_frame()
    df.loc[0, "reward"] = np.inf
    report_dir = tmp_path / "reports"
    with pytest.raises(GateFailed) as excinfo:
        gate(df, rollouts_expectations(R_MIN, R_MAX), "rollouts", tmp_path / "rollouts.parquet", tmp_path,
             report_dir)
    message = str(excinfo.value)
    assert message.startswith(f"quality gate 'rollouts' failed for {tmp_path / 'rollouts.parquet'}:\n  reward: ")
    page = Path(message.splitlines()[-1].removeprefix("full report: "))
    assert page.is_relative_to(report_dir / "docs" / "validations" / "rollouts") and page.is_file()
    assert re.search(r"Status:</span>\s*<i[^>]*text-danger[^>]*></i>\s*Failed", page.read_text())

    def reject(token: str):
        raise ValueError(f"non-standard JSON constant {token}")

    written = json.loads((report_dir / "rollouts.json").read_text(), parse_constant=reject)
    assert written["success"] is False


def test_kept_samples_may_be_none_but_must_all_be_verified(tmp_path):
    kept = verified_frame()
    kept = kept[kept["verified"]].reset_index(drop=True)
    kept.iloc[:0].to_parquet(tmp_path / "verified.parquet")
    empty = pd.read_parquet(tmp_path / "verified.parquet")
    assert validate(empty, kept_expectations(), "kept").success  # a domain where nothing verified
    assert validate(kept, kept_expectations(), "kept").success
    report = validate(verified_frame(), kept_expectations(), "kept")
    assert report.failures == ["verified: expect_column_values_to_be_in_set(value_set=[True]) failed: 2 of 4 rows "
                               "(50.0%), e.g. [False, False]"]
