"""Copies: a generated question that is a seed, pool, pretrain or eval question again, as text or nearly.

A copy has the same normalised text (case, punctuation and spacing aside, and a multiple-choice question's options
in any order: the generator writes its key first and the pipeline shuffles them, so a copied question may come back
reordered). A near-copy has the same numbers and an
embedding cosine of at least the threshold: numbers decide a question's answer, so 'Tom has 5 apples...' and 'Tom
has 6 apples...' are different problems however alike they read, while 'Ann has 5 apples...' with its numbers
unchanged is the same problem renamed. Only questions that share their numbers with some reference are embedded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from acqsynth.domains.mcq import parse_options

_NUMBER_RE = re.compile(r"\d+(?:\.\d+)?")


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


def normalise_question(text: str) -> str:
    stem, options = parse_options(text)
    return " ".join([_words(stem), *sorted(_words(option) for _, option in options)]) if options else _words(text)


def _numbers(text: str) -> tuple[str, ...]:
    return tuple(sorted(_NUMBER_RE.findall(text.replace(",", ""))))


@dataclass(frozen=True)
class Reference:
    split: str  # seed, pool, pretrain, eval
    id: str
    question: str


def copy_reasons(questions: Sequence[str | None], references: Sequence[Reference],
                 embed: Callable[[list[str]], np.ndarray] | None, cosine_threshold: float | None) -> list[str]:
    """For each question, "" or "copy: ..." naming the reference it copies; None (unparsed) is never a copy.
    `embed` maps texts to unit-norm rows; without it (or a threshold) only normalised text is compared."""
    by_text: dict[str, Reference] = {}
    by_numbers: dict[tuple[str, ...], list[int]] = {}
    for index, reference in enumerate(references):
        by_text.setdefault(normalise_question(reference.question), reference)
        by_numbers.setdefault(_numbers(reference.question), []).append(index)
    reasons = [""] * len(questions)
    candidates: list[int] = []
    for i, question in enumerate(questions):
        if question is None:
            continue
        if (same := by_text.get(normalise_question(question))) is not None:
            reasons[i] = f"copy: the same text as {same.split} question {same.id}"
        elif _numbers(question) in by_numbers:
            candidates.append(i)
    if embed is None or cosine_threshold is None or not candidates:
        return reasons
    needed = sorted({j for i in candidates for j in by_numbers[_numbers(questions[i])]})
    reference_rows = dict(zip(needed, embed([references[j].question for j in needed])))
    for i, row in zip(candidates, embed([questions[i] for i in candidates])):
        alike = by_numbers[_numbers(questions[i])]
        cosines = np.stack([reference_rows[j] for j in alike]) @ row
        best = int(np.argmax(cosines))
        if cosines[best] >= cosine_threshold:
            reference = references[alike[best]]
            reasons[i] = (f"copy: near-identical (cosine {cosines[best]:.3f}, same numbers) to {reference.split} "
                          f"question {reference.id}")
    return reasons
