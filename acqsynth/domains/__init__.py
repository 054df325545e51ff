"""The three verifiable domains: math, mcq (medical multiple choice) and code. Each module exposes the same names:
NAME, GENERATOR_INSTRUCTION, procedural_examples, load_examples, extract_answer, answers_match and difficulty
(what a generated sample should share with its seed: math steps, the medical skill, the code family)."""

from __future__ import annotations

from types import ModuleType


def domain_module(name: str) -> ModuleType:
    from acqsynth.domains import code, math, mcq

    modules = {"math": math, "mcq": mcq, "code": code}
    if name not in modules:
        raise ValueError(f"domain: expected one of {sorted(modules)}, got {name!r}")
    return modules[name]
