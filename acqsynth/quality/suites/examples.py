"""The prepared splits: seed, eval, pool, pretrain and test."""

from __future__ import annotations

from acqsynth.quality.checks import STR_TYPES, column
from acqsynth.quality.gates import gxe

EXAMPLE_COLUMNS = ["id", "domain", "skill", "question", "reasoning", "answer", "tests", "source"]


def examples_expectations(rows: int | None = None) -> list[gxe.Expectation]:
    """At least one row, or exactly `rows`; every column a non-null string; unique ids, non-empty questions."""
    count = gxe.ExpectTableRowCountToBeBetween(min_value=1) if rows is None else \
        gxe.ExpectTableRowCountToBeBetween(min_value=rows, max_value=rows)
    checks: list[gxe.Expectation] = [count]
    for name in EXAMPLE_COLUMNS:
        checks += column(name, STR_TYPES)
    checks += [
        gxe.ExpectColumnValuesToBeUnique(column="id"),
        gxe.ExpectColumnValueLengthsToBeBetween(column="question", min_value=1),
    ]
    return checks
