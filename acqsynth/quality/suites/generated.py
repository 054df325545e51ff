"""The generator's samples (data/generated.parquet)."""

from __future__ import annotations

from acqsynth.quality.checks import BOOL_TYPES, SAMPLE_FIELDS, STR_TYPES, column, where
from acqsynth.quality.gates import gxe


def generated_rows() -> list[gxe.Expectation]:
    """Row-level checks of a generated table (no rate floors)."""
    checks = [
        *column("id", STR_TYPES),
        gxe.ExpectColumnValuesToBeUnique(column="id"),
        *column("seed_id", STR_TYPES),
        *column("generator", STR_TYPES),
        *column("completion", STR_TYPES),
        *column("parsed", BOOL_TYPES),
    ]
    for field in SAMPLE_FIELDS:
        checks += column(field, STR_TYPES, nullable=True)
        checks.append(gxe.ExpectColumnValuesToNotBeNull(column=field, row_condition=where("parsed", True)))
    return checks


def generated_expectations(min_parse_rate: float) -> list[gxe.Expectation]:
    return [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        *generated_rows(),
        gxe.ExpectColumnMeanToBeBetween(column="parsed", min_value=min_parse_rate),
    ]
