"""Great Expectations quality gates for the pipeline's artifacts."""

from acqsynth.quality.gates import (
    GateFailed,
    GateReport,
    examples_expectations,
    gate,
    generated_expectations,
    kept_expectations,
    metrics_expectations,
    rollouts_expectations,
    scored_expectations,
    selected_expectations,
    validate_frame,
    verified_expectations,
)

__all__ = [
    "GateFailed",
    "GateReport",
    "examples_expectations",
    "gate",
    "generated_expectations",
    "kept_expectations",
    "metrics_expectations",
    "rollouts_expectations",
    "scored_expectations",
    "selected_expectations",
    "validate_frame",
    "verified_expectations",
]
