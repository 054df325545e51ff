"""The generated samples after verification, and the kept ones (data/verified.parquet)."""

from __future__ import annotations

from acqsynth.quality.checks import BOOL_TYPES, SAMPLE_FIELDS, STR_TYPES, column, where
from acqsynth.quality.gates import gxe
from acqsynth.quality.suites.generated import generated_rows


def verified_rows() -> list[gxe.Expectation]:
    """Row-level checks of a verified table (no rate floors): `reason` is "" exactly when verified, and
    `verification`, what the sample passed, exactly when not."""
    checks = [
        *generated_rows(),
        *column("verified", BOOL_TYPES),
        *column("reason", STR_TYPES),
        gxe.ExpectColumnValuesToBeInSet(column="reason", value_set=[""], row_condition=where("verified", True)),
        gxe.ExpectColumnValueLengthsToBeBetween(column="reason", min_value=1, row_condition=where("verified", False)),
        *column("verification", STR_TYPES),
        gxe.ExpectColumnValueLengthsToBeBetween(column="verification", min_value=1,
                                                row_condition=where("verified", True)),
        gxe.ExpectColumnValuesToBeInSet(column="verification", value_set=[""], row_condition=where("verified", False)),
    ]
    for field in SAMPLE_FIELDS:
        checks.append(gxe.ExpectColumnValuesToNotBeNull(column=field, row_condition=where("verified", True)))
    return checks


def verified_expectations(min_verified_rate: float) -> list[gxe.Expectation]:
    """All generated rows after verification."""
    return [
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        *verified_rows(),
        gxe.ExpectColumnMeanToBeBetween(column="verified", min_value=min_verified_rate),
    ]


def kept_expectations() -> list[gxe.Expectation]:
    """The kept samples, as a later stage reads them: verified rows only, possibly none."""
    return [*verified_rows(), gxe.ExpectColumnValuesToBeInSet(column="verified", value_set=[True])]
