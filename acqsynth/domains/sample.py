"""What every domain shares: the example record, the method's sample format `<question>..</question>
<reasoning>..</reasoning><answer>..</answer>` that the generator writes, and the student's prompt format."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

TAGS = ("<question>", "</question>", "<reasoning>", "</reasoning>", "<answer>", "</answer>")
ANSWER_MARKER = "####"


@dataclass(frozen=True)
class Example:
    """One seed, pool, pre-training or evaluation record of a domain.

    `tests` holds what grading needs beyond `answer`: for code, a Python test program run against the predicted
    solution (it may include hidden tests that the question does not show); empty for math and mcq."""

    id: str
    skill: str
    question: str
    reasoning: str
    answer: str
    tests: str = ""


@dataclass(frozen=True)
class Verdict:
    verified: bool
    reason: str  # "" when verified; otherwise what failed, naming the part of the sample
    # The answer in the domain's canonical form, where the verifier wrote it differently from the sample (mcq: the
    # letter of the option whose text the answer gives); None keeps the sample's own.
    answer: str | None = None
    # What a verified sample passed, in a few words ("" when rejected): the training set keeps it as provenance.
    evidence: str = ""


@dataclass(frozen=True)
class ParsedSample:
    ok: bool
    question: str | None
    reasoning: str | None
    answer: str | None
    error: str


def unique_questions(examples: list[Example]) -> list[Example]:
    """The first example of each question, in order."""
    seen: set[str] = set()
    unique = []
    for example in examples:
        if example.question not in seen:
            seen.add(example.question)
            unique.append(example)
    return unique


def format_sample(question: str, reasoning: str, answer: str) -> str:
    return f"<question>{question}</question><reasoning>{reasoning}</reasoning><answer>{answer}</answer>"


def _failed(error: str) -> ParsedSample:
    return ParsedSample(ok=False, question=None, reasoning=None, answer=None, error=error)


def parse_sample(text: str) -> ParsedSample:
    """Split `<question>..</question><reasoning>..</reasoning><answer>..</answer>`; each tag exactly once, in order."""
    for tag in TAGS:
        count = text.count(tag)
        if count == 0:
            return _failed(f"missing {tag}")
        if count > 1:
            return _failed(f"more than one {tag}")
    positions = [text.index(tag) for tag in TAGS]
    if positions != sorted(positions):
        return _failed("tags out of order")
    ends = [position + len(tag) for position, tag in zip(positions, TAGS)]
    outside = {
        "text before <question>": text[: positions[0]],
        "text between </question> and <reasoning>": text[ends[1] : positions[2]],
        "text between </reasoning> and <answer>": text[ends[3] : positions[4]],
        "text after </answer>": text[ends[5] :],
    }
    for error, stray in outside.items():
        if stray.strip():
            return _failed(error)
    fields = [text[ends[i] : positions[i + 1]].strip() for i in (0, 2, 4)]
    for name, value in zip(("question", "reasoning", "answer"), fields):
        if not value:
            return _failed(f"empty {name}")
    return ParsedSample(ok=True, question=fields[0], reasoning=fields[1], answer=fields[2], error="")


def format_score(text: str) -> float:
    """1.0 for a parseable sample; otherwise 0.9 x the fraction of the six tags found in order (a graded signal)."""
    if parse_sample(text).ok:
        return 1.0
    found, position = 0, 0
    for tag in TAGS:
        index = text.find(tag, position)
        if index >= 0:
            found, position = found + 1, index + len(tag)
    return 0.9 * found / len(TAGS)


def as_written(question: str, reasoning: str, answer: str) -> tuple[str, str, str]:
    """The student view (`student_view`) of a domain whose student sees a sample as it is written."""
    return question, reasoning, answer


def student_prompt(question: str) -> str:
    return f"Question: {question}\nAnswer:"


def student_reasoning(reasoning: str) -> str:
    """A student completion up to its answer: the reasoning and the answer marker."""
    return f" {reasoning}\n{ANSWER_MARKER}"


def student_completion(reasoning: str, answer: str) -> str:
    return f"{student_reasoning(reasoning)} {answer}"


def answer_text(completion: str) -> str | None:
    """Everything after the first `####` of a student completion, stripped; None if there is no marker. Each domain
    normalises this further (a number, an option letter, a code block)."""
    marker = completion.find(ANSWER_MARKER)
    if marker < 0:
        return None
    return completion[marker + len(ANSWER_MARKER):].strip()


def graded_by_answer(answers_match: Callable[[str, str], bool], predicted: Sequence[str | None],
                     expected: Sequence[str]) -> list[bool]:
    """Whether each predicted answer (None: none found) matches its expected one, by the domain's answers_match."""
    return [answer is not None and answers_match(answer, truth) for answer, truth in zip(predicted, expected,
                                                                                        strict=True)]
