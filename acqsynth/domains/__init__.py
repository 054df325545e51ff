"""The verifiable domains: math, mcq (medical multiple choice) and code. Each is one module with the same interface:
NAME, GENERATOR_INSTRUCTION, SAMPLED_WITH_CALCULATOR (whether the calculator fills in the values its samples
state), procedural_examples, load_examples, extract_answer, answers_match, difficulty (what a generated sample
should share with its seed, and what the reports break accuracy down by: the number of steps of a math problem, of
knowledge-base steps of a medical question, of steps of a code task), verify (the verifier of generated samples)
and grade (whether the student's answers are right). Adding a domain is adding its module and naming it in
DOMAINS."""

from __future__ import annotations

from types import ModuleType

from acqsynth.domains import code, math, mcq

DOMAINS = (math, mcq, code)
DOMAIN_NAMES = tuple(module.NAME for module in DOMAINS)


def domain_module(name: str) -> ModuleType:
    for module in DOMAINS:
        if module.NAME == name:
            return module
    raise ValueError(f"domain: expected one of {list(DOMAIN_NAMES)}, got {name!r}")
