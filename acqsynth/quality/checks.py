"""The building blocks of the suites: a typed column, a finite float, a row condition."""

from __future__ import annotations

import math
from typing import Any

from acqsynth.quality.gates import gxe, row_conditions

# Type names as GX's pandas backend resolves them. For a typed column GX compares the column dtype
# (np.dtype("int") is int64, "Int64Dtype" is pandas' nullable int); for an object column it checks each
# value's Python type ("int" -> int, "str" -> str). String columns are handed to GX as object (see
# gates._strings_as_object).
STR_TYPES = ["str"]
INT_TYPES = ["int", "int32", "Int64Dtype"]
FLOAT_TYPES = ["float", "float32", "Float64Dtype"]
BOOL_TYPES = ["bool", "BooleanDtype"]

SAMPLE_FIELDS = ("question", "reasoning", "answer")


def where(column: str, value: bool) -> Any:
    """A row condition (`column == value`): the checks it is given to look at those rows only. A Condition object
    (string row conditions are deprecated since GX 1.9) keeps the conditional check in the same suite and report."""
    return row_conditions.Column(column) == value


def column(name: str, types: list[str], *, nullable: bool = False) -> list[gxe.Expectation]:
    checks: list[gxe.Expectation] = [
        gxe.ExpectColumnToExist(column=name),
        gxe.ExpectColumnValuesToBeInTypeList(column=name, type_list=types),
    ]
    if not nullable:
        checks.append(gxe.ExpectColumnValuesToNotBeNull(column=name))
    return checks


def finite_float(name: str, low: float | None = None, high: float | None = None, *,
                 nullable: bool = False) -> list[gxe.Expectation]:
    # GX counts NaN as missing and skips it in value checks, so not-null (from `column`) is what rejects
    # NaN; the not-in-set check rejects +/-inf (a between-check with one open side lets infinity through).
    checks = [*column(name, FLOAT_TYPES, nullable=nullable),
              gxe.ExpectColumnValuesToNotBeInSet(column=name, value_set=[math.inf, -math.inf])]
    if low is not None or high is not None:
        checks.append(gxe.ExpectColumnValuesToBeBetween(column=name, min_value=low, max_value=high))
    return checks
