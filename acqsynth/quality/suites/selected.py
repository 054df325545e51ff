"""The fine-tuning set (data/selected.parquet)."""

from __future__ import annotations

from collections.abc import Iterable

from acqsynth.quality.checks import STR_TYPES, column, finite_float
from acqsynth.quality.gates import gxe


def selected_expectations(rewards: Iterable[str]) -> list[gxe.Expectation]:
    """At least one row, unique ids, non-empty text fields (the prompt and completion the student is trained on
    included); `selection_score` finite, or null (seed-only and random arms have none); the provenance of synthetic
    samples (seed id, generator, what its verification found, each reward in `rewards` and the combined score),
    null for seed and pool samples."""
    checks: list[gxe.Expectation] = [gxe.ExpectTableRowCountToBeBetween(min_value=1),
                                     gxe.ExpectColumnValuesToBeUnique(column="id"),
                                     *finite_float("selection_score", nullable=True)]
    for name in ("id", "source", "question", "reasoning", "answer", "prompt", "completion"):
        checks += [*column(name, STR_TYPES), gxe.ExpectColumnValueLengthsToBeBetween(column=name, min_value=1)]
    for name in ("seed_id", "generator", "verification"):
        checks += column(name, STR_TYPES, nullable=True)
    for name in (*rewards, "acquisition_score"):
        checks += finite_float(name, nullable=True)
    return checks
