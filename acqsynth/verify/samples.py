"""Checking generated texts end to end: parse the method's format, then verify each parsed sample with its domain's
verifier. GRPO rollouts and the standalone generate and verify stages all go through `check_samples`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from acqsynth.domains.sample import Verdict, format_score, parse_sample

if TYPE_CHECKING:
    from acqsynth.verify.sandbox import MissingLayers


@dataclass(frozen=True)
class SampleCheck:
    parsed: bool
    verified: bool
    reason: str  # "" when verified
    format_score: float
    question: str | None
    reasoning: str | None
    answer: str | None


def verify_batch(domain: str, questions: Sequence[str], reasonings: Sequence[str], answers: Sequence[str],
                 workers: int = 1, missing_layers: MissingLayers = "refuse") -> list[Verdict]:
    """The domain's verifier over a batch; code runs `workers` sandboxed programs at once (missing_layers: see
    acqsynth.verify.sandbox.run_program)."""
    questions, reasonings, answers = list(questions), list(reasonings), list(answers)
    if domain == "math":
        from acqsynth.verify.math import verify_batch as verify_math

        return verify_math(questions, reasonings, answers)
    if domain == "mcq":
        from acqsynth.verify.mcq import verify_batch as verify_mcq

        return verify_mcq(questions, reasonings, answers)
    if domain == "code":
        from acqsynth.verify.code import verify_batch as verify_code

        return verify_code(questions, reasonings, answers, workers=workers, missing_layers=missing_layers)
    raise ValueError(f"domain: expected math, mcq or code, got {domain!r}")


def check_samples(texts: Sequence[str], domain: str, workers: int = 1,
                  missing_layers: MissingLayers = "refuse") -> list[SampleCheck]:
    parsed = [parse_sample(text) for text in texts]
    ok = [sample for sample in parsed if sample.ok]
    verdicts = iter(verify_batch(domain, [s.question for s in ok], [s.reasoning for s in ok], [s.answer for s in ok],
                                 workers, missing_layers))
    checks = []
    for text, sample in zip(texts, parsed, strict=True):
        score = format_score(text)
        if not sample.ok:
            checks.append(SampleCheck(False, False, f"parse failed: {sample.error}", score, None, None, None))
            continue
        verdict = next(verdicts)
        checks.append(SampleCheck(True, verdict.verified, verdict.reason, score, sample.question, sample.reasoning,
                                  sample.answer))
    return checks
