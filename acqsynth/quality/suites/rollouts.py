"""GRPO's rollout log (data/rollouts.parquet)."""

from __future__ import annotations

from acqsynth.quality.checks import BOOL_TYPES, INT_TYPES, STR_TYPES, column, finite_float, where
from acqsynth.quality.gates import gxe


def rollouts_expectations(reward_min: float | None, reward_max: float | None) -> list[gxe.Expectation]:
    """`reward` is the acquisition reward plus a format reward in [0, 1]. A bound of None means unbounded on that
    side (the values must still be finite)."""
    return [
        *column("step", INT_TYPES),
        gxe.ExpectColumnValuesToBeBetween(column="step", min_value=0),
        *column("prompt_id", STR_TYPES),
        *column("completion", STR_TYPES),
        *column("parsed", BOOL_TYPES),
        *column("verified", BOOL_TYPES),
        *finite_float("format_reward", 0.0, 1.0),
        *finite_float("acquisition_reward", reward_min, reward_max),
        # Missing only where a rollout had no part in its group (gate mode: not verified).
        *finite_float("reward", reward_min, None if reward_max is None else reward_max + 1.0, nullable=True),
        gxe.ExpectColumnValuesToNotBeNull(column="reward", row_condition=where("verified", True)),
        *column("difficulty", STR_TYPES, nullable=True),  # missing where not parsed
        *finite_float("acquisition_percentile", 0.0, 1.0, nullable=True),  # missing where not scored
    ]
