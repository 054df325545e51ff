"""The verifiable domains: math, mcq (medical multiple choice) and code. Each is one module with the same interface:
NAME, GENERATOR_INSTRUCTION, SAMPLED_WITH_CALCULATOR (whether the calculator fills in the values its samples
state), student_view (what the student sees of a sample: as written, or for procedural code the task with its
function renamed and its constants hidden), generator_view and from_generator (a sample as the generator is shown
and taught it, and a generated one back in the domain's form: as written, or for mcq the key written first and then
put at a place of its own), procedural_examples, load_examples, extract_answer, answers_match,
difficulty (what a generated sample should share with its seed, and what the reports break accuracy down by: the
number of steps of a math problem, of knowledge-base steps of a medical question, of steps of a code task), verify
(the verifier of generated samples) and grade (whether the student's answers, to what it saw, are right). Adding a
domain is adding its module and naming it in DOMAINS."""

from __future__ import annotations

from types import ModuleType

from acqsynth.domains import code, math, mcq
from acqsynth.domains.sample import ParsedSample, format_sample, parse_sample, student_completion, student_prompt

DOMAINS = (math, mcq, code)
DOMAIN_NAMES = tuple(module.NAME for module in DOMAINS)


def domain_module(name: str) -> ModuleType:
    for module in DOMAINS:
        if module.NAME == name:
            return module
    raise ValueError(f"domain: expected one of {list(DOMAIN_NAMES)}, got {name!r}")


def generator_sample(domain: str, question: str, reasoning: str, answer: str) -> str:
    """A `domain` sample in the method's format as the generator is shown and taught it (the domain's
    `generator_view`)."""
    return format_sample(*domain_module(domain).generator_view(question, reasoning, answer))


def generator_prompt(domain: str, question: str, reasoning: str, answer: str) -> str:
    """The generator's prompt: the domain's instruction and one seed example, in the method's order (question,
    reasoning, answer)."""
    example = generator_sample(domain, question, reasoning, answer)
    return f"{domain_module(domain).GENERATOR_INSTRUCTION}\n{example}\nNew:\n"


def parse_generated(domain: str, text: str) -> ParsedSample:
    """A generator's text as a `domain` sample: parsed, then in the domain's form (its `from_generator`)."""
    parsed = parse_sample(text)
    if not parsed.ok:
        return parsed
    question, reasoning, answer = domain_module(domain).from_generator(parsed.question, parsed.reasoning,
                                                                       parsed.answer)
    return ParsedSample(True, question, reasoning, answer, parsed.error)


def student_pair(domain: str, question: str, reasoning: str, answer: str) -> tuple[str, str]:
    """The prompt and the completion of a `domain` sample as the student sees it (the domain's `student_view`)."""
    question, reasoning, answer = domain_module(domain).student_view(question, reasoning, answer)
    return student_prompt(question), student_completion(reasoning, answer)


def student_question(domain: str, question: str) -> str:
    """The prompt of a `domain` question as the student sees it."""
    return student_prompt(domain_module(domain).student_view(question, "", "")[0])
