"""Confidence reward: the student answers the question; reward = 1 / mean over its answer tokens of
p(top1) - p(top2), clipped. An unsure student (small margins) gives a high reward."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from acqsynth.domains.math import student_prompt
from acqsynth.generation.transformers_backend import generate
from acqsynth.models.loading import LoadedModel


@dataclass(frozen=True)
class ConfidenceScore:
    reward: float
    mean_margin: float
    student_answer: str


def reward_from_margins(margins: Sequence[float], clip: tuple[float, float]) -> float:
    low, high = clip
    if not margins:  # the student wrote nothing: as unsure as it gets
        return high
    mean_margin = sum(margins) / len(margins)
    if mean_margin <= 1.0 / high:
        return high
    return min(high, max(low, 1.0 / mean_margin))


def confidence_scores(
    student: LoadedModel,
    questions: Sequence[str],
    clip: tuple[float, float],
    max_new_tokens: int,
    batch_size: int,
    description: str | None = None,
) -> list[ConfidenceScore]:
    answers = generate(
        student.model,
        student.tokenizer,
        [student_prompt(question) for question in questions],
        max_new_tokens=max_new_tokens,
        temperature=0.0,
        batch_size=batch_size,
        with_margins=True,
        description=description,
    )
    return [
        ConfidenceScore(
            reward=reward_from_margins(answer.margins, clip),
            mean_margin=sum(answer.margins) / len(answer.margins) if answer.margins else 0.0,
            student_answer=answer.text,
        )
        for answer in answers
    ]
