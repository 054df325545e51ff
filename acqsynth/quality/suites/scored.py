"""The kept samples with their acquisition scores (data/scored.parquet)."""

from __future__ import annotations

from collections.abc import Mapping

from acqsynth.quality.checks import finite_float
from acqsynth.quality.gates import gxe
from acqsynth.quality.suites.verified import verified_rows


def scored_expectations(ranges: Mapping[str, tuple[float | None, float | None]]) -> list[gxe.Expectation]:
    """Verified rows with one finite score column per acquisition reward, each within its range (None: unbounded
    on that side), and the combined `acquisition_score`."""
    return [
        *verified_rows(),
        *[check for name, (low, high) in ranges.items() for check in finite_float(name, low, high)],
        *finite_float("acquisition_score"),
    ]
