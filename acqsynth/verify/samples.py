"""Checking one generated text end to end: parse the method's format, then verify it as a math sample.
GRPO rollouts and the standalone generate and verify stages all go through `check_sample`."""

from __future__ import annotations

from dataclasses import dataclass

from acqsynth.domains.math import format_score, parse_sample
from acqsynth.verify.math import verify_math_sample


@dataclass(frozen=True)
class SampleCheck:
    parsed: bool
    verified: bool
    reason: str  # "" when verified
    format_score: float
    question: str | None
    reasoning: str | None
    answer: str | None


def check_sample(text: str) -> SampleCheck:
    parsed = parse_sample(text)
    score = format_score(text)
    if not parsed.ok:
        return SampleCheck(False, False, f"parse failed: {parsed.error}", score, None, None, None)
    verdict = verify_math_sample(parsed.question, parsed.reasoning, parsed.answer)
    return SampleCheck(True, verdict.verified, verdict.reason, score, parsed.question, parsed.reasoning,
                       parsed.answer)
