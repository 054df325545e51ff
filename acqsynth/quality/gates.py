"""Great Expectations suites, one per artifact kind, and the gate that runs them.

Each ``*_expectations`` function returns the exact list of GX expectations checked for that artifact;
``gate`` validates a DataFrame against such a list, writes the GX result as JSON and raises on failure.
"""

from __future__ import annotations

import copy
import functools
import math
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import importlib
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from acqsynth.artifacts import write_json

if TYPE_CHECKING:
    from great_expectations.core.batch_definition import BatchDefinition
    from great_expectations.data_context import AbstractDataContext


class _Imported:
    """A module imported on first use. Great Expectations takes seconds to import, and commands that validate no
    table (`acqsynth --help`, `check`, listing the stages) should not wait for it."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)


def _where(column: str, value: bool) -> Any:
    """A row condition (`column == value`): the checks it is given to look at those rows only."""
    return _conditions.Column(column) == value


gx = _Imported("great_expectations")
gxe = _Imported("great_expectations.expectations")
_conditions = _Imported("great_expectations.expectations.row_conditions")

# Type names as GX's pandas backend resolves them. For a typed column GX compares the column dtype
# (np.dtype("int") is int64, "Int64Dtype" is pandas' nullable int); for an object column it checks each
# value's Python type ("int" -> int, "str" -> str). String columns are handed to GX as object, see
# `_strings_as_object`.
STR_TYPES = ["str"]
INT_TYPES = ["int", "int32", "Int64Dtype"]
FLOAT_TYPES = ["float", "float32", "Float64Dtype"]
BOOL_TYPES = ["bool", "BooleanDtype"]

_EXAMPLE_COLUMNS = ("id", "domain", "skill", "question", "reasoning", "answer", "tests", "source")
_SAMPLE_FIELDS = ("question", "reasoning", "answer")


@dataclass(frozen=True)
class GateReport:
    name: str
    success: bool
    failures: list[str]  # one readable line per failed expectation
    result_json: dict  # the GX validation result, `.to_json_dict()`


class GateFailed(Exception):
    """An artifact did not pass its quality gate."""


# --- building blocks -------------------------------------------------------------------------------


def _column(name: str, types: list[str], *, nullable: bool = False) -> list[gxe.Expectation]:
    checks: list[gxe.Expectation] = [
        gxe.ExpectColumnToExist(column=name),
        gxe.ExpectColumnValuesToBeInTypeList(column=name, type_list=types),
    ]
    if not nullable:
        checks.append(gxe.ExpectColumnValuesToNotBeNull(column=name))
    return checks


def _finite_float(name: str, low: float | None = None, high: float | None = None, *,
                  nullable: bool = False) -> list[gxe.Expectation]:
    # GX counts NaN as missing and skips it in value checks, so not-null (from `_column`) is what rejects
    # NaN; the not-in-set check rejects +/-inf (a between-check with one open side lets infinity through).
    checks = [*_column(name, FLOAT_TYPES, nullable=nullable),
              gxe.ExpectColumnValuesToNotBeInSet(column=name, value_set=[math.inf, -math.inf])]
    if low is not None or high is not None:
        checks.append(gxe.ExpectColumnValuesToBeBetween(column=name, min_value=low, max_value=high))
    return checks


def _generated_rows() -> list[gxe.Expectation]:
    """Row-level checks of a generated table (no rate floors)."""
    checks = [
        *_column("id", STR_TYPES),
        gxe.ExpectColumnValuesToBeUnique(column="id"),
        *_column("seed_id", STR_TYPES),
        *_column("generator", STR_TYPES),
        *_column("completion", STR_TYPES),
        *_column("parsed", BOOL_TYPES),
    ]
    for field in _SAMPLE_FIELDS:
        checks += _column(field, STR_TYPES, nullable=True)
        # A Condition object (string row conditions are deprecated since GX 1.9) keeps the conditional
        # check in the same suite and report; GX's pandas backend filters rows with it before checking.
        checks.append(gxe.ExpectColumnValuesToNotBeNull(column=field, row_condition=_where("parsed", True)))
    return checks


def _verified_rows() -> list[gxe.Expectation]:
    """Row-level checks of a verified table (no rate floors): `reason` is "" exactly when verified."""
    checks = [
        *_generated_rows(),
        *_column("verified", BOOL_TYPES),
        *_column("reason", STR_TYPES),
        gxe.ExpectColumnValuesToBeInSet(column="reason", value_set=[""], row_condition=_where("verified", True)),
        gxe.ExpectColumnValueLengthsToBeBetween(
            column="reason", min_value=1, row_condition=_where("verified", False)
        ),
    ]
    for field in _SAMPLE_FIELDS:
        checks.append(gxe.ExpectColumnValuesToNotBeNull(column=field, row_condition=_where("verified", True)))
    return checks


# --- suites ----------------------------------------------------------------------------------------


def examples_expectations(rows: int | None = None) -> list[gxe.Expectation]:
    """Seed / eval / pool / pretrain / test tables: at least one row, or exactly `rows`."""
    count = gxe.ExpectTableRowCountToBeBetween(min_value=1) if rows is None else \
        gxe.ExpectTableRowCountToBeBetween(min_value=rows, max_value=rows)
    checks: list[gxe.Expectation] = [count]
    for name in _EXAMPLE_COLUMNS:
        checks += _column(name, STR_TYPES)
    checks += [
        gxe.ExpectColumnValuesToBeUnique(column="id"),
        gxe.ExpectColumnValueLengthsToBeBetween(column="question", min_value=1),
    ]
    return checks


def rollouts_expectations(reward_min: float | None, reward_max: float | None) -> list[gxe.Expectation]:
    """GRPO rollout logs; `reward` is the acquisition reward plus a format reward in [0, 1]. A bound of None
    means unbounded on that side (the values must still be finite)."""
    return [
        *_column("step", INT_TYPES),
        gxe.ExpectColumnValuesToBeBetween(column="step", min_value=0),
        *_column("prompt_id", STR_TYPES),
        *_column("completion", STR_TYPES),
        *_column("parsed", BOOL_TYPES),
        *_column("verified", BOOL_TYPES),
        *_finite_float("format_reward", 0.0, 1.0),
        *_finite_float("acquisition_reward", reward_min, reward_max),
        # Missing only where a rollout had no part in its group (gate mode: not verified).
        *_finite_float("reward", reward_min, None if reward_max is None else reward_max + 1.0, nullable=True),
        gxe.ExpectColumnValuesToNotBeNull(column="reward", row_condition="verified==True", condition_parser="pandas"),
        *_column("difficulty", STR_TYPES, nullable=True),  # missing where not parsed
        *_finite_float("acquisition_percentile", 0.0, 1.0, nullable=True),  # missing where not scored
    ]


def generated_expectations(min_parse_rate: float) -> list[gxe.Expectation]:
    return [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        *_generated_rows(),
        gxe.ExpectColumnMeanToBeBetween(column="parsed", min_value=min_parse_rate),
    ]


def verified_expectations(min_verified_rate: float) -> list[gxe.Expectation]:
    """All generated rows after verification."""
    return [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        *_verified_rows(),
        gxe.ExpectColumnMeanToBeBetween(column="verified", min_value=min_verified_rate),
    ]


def kept_expectations() -> list[gxe.Expectation]:
    """The kept samples (data/verified.parquet), as a later stage reads them: verified rows only, possibly none."""
    return [*_verified_rows(), gxe.ExpectColumnValuesToBeInSet(column="verified", value_set=[True])]


def scored_expectations(ranges: Mapping[str, tuple[float | None, float | None]]) -> list[gxe.Expectation]:
    """Verified rows with one finite score column per acquisition reward, each within its range (None: unbounded
    on that side), and the combined `acquisition_score`."""
    return [
        *_verified_rows(),
        *[check for name, (low, high) in ranges.items() for check in _finite_float(name, low, high)],
        *_finite_float("acquisition_score"),
    ]


def selected_expectations(rewards: Iterable[str]) -> list[gxe.Expectation]:
    """The fine-tuning set: at least one row, unique ids, non-empty text fields (the prompt and completion the
    student is trained on included); `selection_score` finite, or null (seed-only and random arms have none); the
    provenance of synthetic samples (seed id, generator, each reward in `rewards` and the combined score), null for
    seed and pool samples."""
    checks: list[gxe.Expectation] = [gxe.ExpectTableRowCountToBeBetween(min_value=1),
                                     gxe.ExpectColumnValuesToBeUnique(column="id"),
                                     *_finite_float("selection_score", nullable=True)]
    for name in ("id", "source", "question", "reasoning", "answer", "prompt", "completion"):
        checks += [*_column(name, STR_TYPES), gxe.ExpectColumnValueLengthsToBeBetween(column=name, min_value=1)]
    for name in ("seed_id", "generator"):
        checks += _column(name, STR_TYPES, nullable=True)
    for name in (*rewards, "acquisition_score"):
        checks += _finite_float(name, nullable=True)
    return checks


def metrics_expectations(columns: Iterable[str]) -> list[gxe.Expectation]:
    """A one-row metrics table. Pass the table's columns: the suite checks those ending in "accuracy"."""
    checks: list[gxe.Expectation] = [gxe.ExpectTableRowCountToEqual(value=1)]
    for name in columns:
        if name.endswith("accuracy"):
            checks += _finite_float(name, 0.0, 1.0)
    return checks


# --- validation ------------------------------------------------------------------------------------

# GX's context is not thread-safe and Prefect runs tasks in threads.
_LOCK = threading.Lock()


@functools.cache
def _batch_definition() -> tuple[AbstractDataContext, BatchDefinition]:
    # One ephemeral context and one dataframe asset per process; each run passes its frame as a
    # batch parameter, so only the suite differs between validations.
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = _Imported("great_expectations.data_context.types.base").ProgressBarsConfig(
        globally=False)
    asset = context.data_sources.add_pandas("frames").add_dataframe_asset("frame")
    return context, asset.add_batch_definition_whole_dataframe("whole")


def _strings_as_object(df: pd.DataFrame) -> pd.DataFrame:
    # pandas 3's default `str` dtype (StringDtype with na_value=nan) equals no dtype a GX type name resolves
    # to, so a type check on it always fails; as object, GX checks each value's Python type instead.
    return df.astype({c: object for c, dtype in df.dtypes.items() if isinstance(dtype, pd.StringDtype)})


def validate_frame(df: pd.DataFrame, expectations: list[gxe.Expectation], name: str) -> GateReport:
    frame = _strings_as_object(df)
    with _LOCK:
        context, batch_definition = _batch_definition()
        # GX binds an expectation to one suite; copy.copy gives an unbound deep copy.
        suite = context.suites.add(
            gx.ExpectationSuite(name=f"{name}-{uuid.uuid4().hex}", expectations=[copy.copy(e) for e in expectations])
        )
        try:
            validation = gx.ValidationDefinition(name=suite.name, data=batch_definition, suite=suite)
            result = validation.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY")
        finally:
            context.suites.delete(suite.name)
    return GateReport(
        name=name,
        success=bool(result.success),
        failures=[_describe(r) for r in result.results if not r.success],
        result_json=result.to_json_dict(),
    )


def gate(
    df: pd.DataFrame, expectations: list[gxe.Expectation], name: str, path: Path, report_dir: Path
) -> GateReport:
    """Validate `df` (the artifact at `path`), write the report to `report_dir/<name>.json` (GX's result plus the
    validation's wall time, `acqsynth_seconds`), raise if it failed."""
    started = time.perf_counter()
    report = validate_frame(df, expectations, name)
    report_path = Path(report_dir) / f"{name}.json"
    write_json(report_path, {**_json_safe(report.result_json),
                             "acqsynth_seconds": round(time.perf_counter() - started, 4)})
    if not report.success:
        lines = "\n".join(f"  {line}" for line in report.failures)
        raise GateFailed(f"quality gate '{name}' failed for {path}:\n{lines}\nfull report: {report_path}")
    return report


# --- reporting -------------------------------------------------------------------------------------


def _describe(result: Any) -> str:
    """One line for a failed expectation result, e.g. `x: expect_...(min=0) failed: 3 of 40 rows (7.5%), e.g. [inf]`."""
    config = result.expectation_config
    kwargs = dict(config.kwargs)
    column = kwargs.pop("column", None) or "table"
    kwargs.pop("batch_id", None)
    condition = kwargs.pop("row_condition", None)
    args = ", ".join(f"{k.removesuffix('_value')}={_plain(v)!r}" for k, v in kwargs.items())
    where = f" where {_conditions.deserialize_row_condition(condition)!r}" if condition else ""
    head = f"{column}: {config.type}({args}){where}"

    error = _exception_message(result.exception_info)
    if error:
        return f"{head} could not run: {error}"
    outcome = result.result or {}
    if "unexpected_count" in outcome:
        count, total = outcome["unexpected_count"], outcome["element_count"]
        examples = [_plain(v) for v in outcome.get("partial_unexpected_list", [])[:5]]
        return f"{head} failed: {count} of {total} rows ({100 * count / max(total, 1):.1f}%), e.g. {examples}"
    if "observed_value" in outcome:
        return f"{head} failed: observed {_plain(outcome['observed_value'])}"
    return f"{head} failed"


def _exception_message(info: dict) -> str | None:
    # GX puts the error at the top level, or (for a metric that failed to resolve, e.g. a missing
    # column) one level down, keyed by metric id.
    if info.get("raised_exception"):
        return info.get("exception_message")
    for value in info.values():
        if isinstance(value, dict) and value.get("raised_exception"):
            return value.get("exception_message")
    return None


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _json_safe(value: Any) -> Any:
    # GX leaves +/-inf and NaN floats in its result; spell them as strings so the report is strict JSON.
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value

