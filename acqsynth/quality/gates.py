"""The gate: validate a DataFrame against a list of Great Expectations expectations (a suite of
`acqsynth.quality.suites`, one module per artifact kind), write the GX result as JSON and raise on failure.

The suites are modules of their own so that a stage depends (in dvc.yaml and in its task's cache key, both taken
from the import graph) on the suites it checks and on no other: editing a suite reruns exactly the stages it
guards.
"""

from __future__ import annotations

import copy
import functools
import importlib
import logging
import math
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


gx = _Imported("great_expectations")
gxe = _Imported("great_expectations.expectations")
row_conditions = _Imported("great_expectations.expectations.row_conditions")


@dataclass(frozen=True)
class GateReport:
    name: str
    success: bool
    failures: list[str]  # one readable line per failed expectation
    result_json: dict  # the GX validation result, `.to_json_dict()`


class GateFailed(Exception):
    """An artifact did not pass its quality gate."""


# --- validation ------------------------------------------------------------------------------------

# GX's context is not thread-safe and Prefect runs tasks in threads.
_LOCK = threading.Lock()


@functools.cache
def _batch_definition() -> tuple[AbstractDataContext, BatchDefinition]:
    # One ephemeral context and one dataframe asset per process; each run passes its frame as a
    # batch parameter, so only the suite differs between validations.
    # GX logs an INFO line per context ("Created temporary directory ... for ephemeral docs site"): not news.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
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
    where = f" where {row_conditions.deserialize_row_condition(condition)!r}" if condition else ""
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

