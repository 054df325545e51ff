"""The gate: validate a DataFrame against a list of Great Expectations expectations (a suite of
`acqsynth.quality.suites`, one module per artifact kind) through a GX Checkpoint of the project's file-backed context
(`gx/`: the suite, validation definition and checkpoint saved under the gate's name), whose action builds the Data
Docs page of the result (HTML under reports/quality/docs/); write a one-line-per-failure summary and raise on
failure.

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
import os
import shutil
import threading
import time
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
    data_docs: Path  # the result's Data Docs page


class GateFailed(Exception):
    """An artifact did not pass its quality gate."""


# --- validation ------------------------------------------------------------------------------------

SITE = "acqsynth"  # the one Data Docs site, in DOCS under the gates' report directory
DOCS = "docs"
# GX's context is not thread-safe and Prefect runs tasks in threads.
_LOCK = threading.Lock()


@functools.cache
def _context(project: Path, docs: Path) -> tuple[AbstractDataContext, BatchDefinition]:
    """The project's file-backed context (`project/gx/`, created on first use) with its Data Docs site at `docs`,
    and its one dataframe asset: each validation passes its frame as a batch parameter."""
    # GX logs an INFO line per context: not news.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="file", project_root_dir=str(project))
    context.variables.progress_bars = _Imported("great_expectations.data_context.types.base").ProgressBarsConfig(
        globally=False)
    # Relative to the context's root, so the project can move.
    context.variables.data_docs_sites = {SITE: {
        "class_name": "SiteBuilder", "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                          "base_directory": os.path.relpath(docs, context.root_directory)}}}
    context.variables.save()
    # Looked up by `get_*`, which hand back objects bound to the context (a listing's are not).
    if "frames" not in context.data_sources.all():
        context.data_sources.add_pandas("frames").add_dataframe_asset("frame").add_batch_definition_whole_dataframe(
            "whole")
    return context, context.data_sources.get("frames").get_asset("frame").get_batch_definition("whole")


def _forget_results(context: AbstractDataContext, name: str, docs: Path) -> None:
    """Drop the gate's earlier results and their pages: the Data Docs show each gate's latest result (the site's
    index, rebuilt at every validation, would otherwise grow with every run)."""
    store = context.validation_results_store
    for key in store.list_keys():
        if key.expectation_suite_identifier.name == name:
            store.remove_key(key)
    shutil.rmtree(docs / "validations" / name, ignore_errors=True)


def _strings_as_object(df: pd.DataFrame) -> pd.DataFrame:
    # pandas 3's default `str` dtype (StringDtype with na_value=nan) equals no dtype a GX type name resolves
    # to, so a type check on it always fails; as object, GX checks each value's Python type instead.
    return df.astype({c: object for c, dtype in df.dtypes.items() if isinstance(dtype, pd.StringDtype)})


def validate_frame(df: pd.DataFrame, expectations: list[gxe.Expectation], name: str, project: Path,
                   docs: Path) -> GateReport:
    """Run the checkpoint `name` of `project`'s GX context on `df`, its suite and validation definition saved under
    the same name; the result's Data Docs page is built under `docs`."""
    frame = _strings_as_object(df)
    with _LOCK:
        context, batch_definition = _context(Path(project).resolve(), Path(docs).resolve())
        # GX binds an expectation to one suite; copy.copy gives an unbound deep copy.
        suite = context.suites.add_or_update(
            gx.ExpectationSuite(name=name, expectations=[copy.copy(e) for e in expectations]))
        validation = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=name, data=batch_definition, suite=suite))
        checkpoint = context.checkpoints.add_or_update(gx.Checkpoint(
            name=name, validation_definitions=[validation], result_format="SUMMARY",
            actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=[SITE])]))
        _forget_results(context, name, docs)
        [(identifier, result)] = checkpoint.run(batch_parameters={"dataframe": frame}).run_results.items()
        [site] = context.get_docs_sites_urls(resource_identifier=identifier, site_names=[SITE])
    return GateReport(
        name=name,
        success=bool(result.success),
        failures=[_describe(r) for r in result.results if not r.success],
        result_json=result.to_json_dict(),
        data_docs=Path(os.path.normpath(site["site_url"].removeprefix("file://"))),
    )


def gate(df: pd.DataFrame, expectations: list[gxe.Expectation], name: str, path: Path, project: Path,
         report_dir: Path) -> GateReport:
    """Validate `df` (the artifact at `path`) with `project`'s GX context, its Data Docs under `report_dir/DOCS`;
    write the summary to `report_dir/<name>.json` (success, the failures, the statistics, the Data Docs page and the
    validation's wall time, `acqsynth_seconds`); raise if it failed."""
    started = time.perf_counter()
    report = validate_frame(df, expectations, name, project, Path(report_dir) / DOCS)
    report_path = Path(report_dir) / f"{name}.json"
    write_json(report_path, {"name": name, "artifact": str(path), "success": report.success,
                             "failures": report.failures,
                             "statistics": _json_safe(report.result_json["statistics"]),
                             "data_docs": str(report.data_docs),
                             "acqsynth_seconds": round(time.perf_counter() - started, 4)})
    if not report.success:
        lines = "\n".join(f"  {line}" for line in report.failures)
        raise GateFailed(f"quality gate '{name}' failed for {path}:\n{lines}\nfull report: {report.data_docs}")
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

