"""A stage's one-row metrics table (what build_models and evaluate measure)."""

from __future__ import annotations

from collections.abc import Iterable

from acqsynth.quality.checks import finite_float
from acqsynth.quality.gates import gxe


def metrics_expectations(columns: Iterable[str]) -> list[gxe.Expectation]:
    """Pass the table's columns: the suite checks those ending in "accuracy", each a finite value in [0, 1]."""
    checks: list[gxe.Expectation] = [gxe.ExpectTableRowCountToEqual(value=1)]
    for name in columns:
        if name.endswith("accuracy"):
            checks += finite_float(name, 0.0, 1.0)
    return checks
