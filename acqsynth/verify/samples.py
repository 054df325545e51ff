"""Checking generated texts end to end: parse the method's format, then verify each parsed sample with its domain's
verifier. GRPO rollouts and the standalone generate and verify stages all go through `check_samples`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from acqsynth.config import PROCEDURAL, PipelineConfig
from acqsynth.domains import parse_generated
from acqsynth.domains.sample import Verdict, format_score
from acqsynth.verify.math import MathRules
from acqsynth.verify.sandbox import MissingLayers


@dataclass(frozen=True)
class VerifyRules:
    """What the domain verifiers check, as params.yaml's `verify` section and the target's data source say."""

    workers: int = 1  # sandboxed programs at once (code)
    missing_layers: MissingLayers = "refuse"  # code: where the host lacks an essential sandbox layer
    math: MathRules = field(default_factory=MathRules)
    max_mutants: int = 8  # code
    # mcq from the procedural knowledge base: verify only questions the knowledge base can judge (its closed world
    # makes a question outside its forms neither right nor wrong); real data has no such oracle.
    mcq_knowledge_base: bool = False


def verify_rules(config: PipelineConfig, domain: str | None = None) -> VerifyRules:
    """The rules for `domain` (default: the target): the reference solver for procedural math, grounding with the
    allowed constants for real math, the knowledge base's judgement for procedural mcq."""
    cfg = config.verify
    procedural = config.prepare.sources[domain or config.domain] == PROCEDURAL
    math = MathRules(grounding=cfg.math.grounding, real_data=not procedural,
                     constants=frozenset(Fraction(str(c)) for c in cfg.math.allowed_constants) if not procedural
                     else frozenset(), reference_solver=procedural and cfg.math.reference_solver)
    return VerifyRules(workers=cfg.workers, missing_layers=cfg.sandbox_missing_layers, math=math,
                       max_mutants=cfg.code.max_mutants, mcq_knowledge_base=procedural)


@dataclass(frozen=True)
class SampleCheck:
    parsed: bool
    verified: bool
    reason: str  # "" when verified
    format_score: float
    question: str | None
    reasoning: str | None
    answer: str | None  # in the domain's canonical form (`Verdict.answer`)
    evidence: str = ""  # what a verified sample passed (`Verdict.evidence`)


def verify_batch(domain: str, questions: Sequence[str], reasonings: Sequence[str], answers: Sequence[str],
                 rules: VerifyRules | None = None) -> list[Verdict]:
    """The domain's verifier over a batch, under `rules` (default: `VerifyRules()`)."""
    from acqsynth.domains import domain_module

    return domain_module(domain).verify(list(questions), list(reasonings), list(answers), rules or VerifyRules())


def check_samples(texts: Sequence[str], domain: str, rules: VerifyRules | None = None) -> list[SampleCheck]:
    parsed = [parse_generated(domain, text) for text in texts]
    ok = [sample for sample in parsed if sample.ok]
    verdicts = iter(verify_batch(domain, [s.question for s in ok], [s.reasoning for s in ok], [s.answer for s in ok],
                                 rules))
    checks = []
    for text, sample in zip(texts, parsed, strict=True):
        score = format_score(text)
        if not sample.ok:
            checks.append(SampleCheck(False, False, f"parse: {sample.error}", score, None, None, None))
            continue
        verdict = next(verdicts)
        checks.append(SampleCheck(True, verdict.verified, verdict.reason, score, sample.question, sample.reasoning,
                                  verdict.answer or sample.answer, verdict.evidence))
    return checks
