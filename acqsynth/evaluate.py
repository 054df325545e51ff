"""Evaluate: verifiable accuracy of a student (exact numeric match of its final answer), in domain and on a skill
it had before fine-tuning (forgetting)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from acqsynth.domains.math import extract_final_answer, numbers_equal, student_prompt
from acqsynth.generation.transformers_backend import generate
from acqsynth.models.loading import LoadedModel


@dataclass(frozen=True)
class Accuracy:
    accuracy: float
    predictions: pd.DataFrame  # id, predicted, expected, correct


def accuracy(student: LoadedModel, examples: pd.DataFrame, max_new_tokens: int, batch_size: int,
             description: str | None = None) -> Accuracy:
    answers = generate(student.model, student.tokenizer, [student_prompt(q) for q in examples["question"]],
                       max_new_tokens=max_new_tokens, temperature=0.0, batch_size=batch_size,
                       description=description)
    predicted = [extract_final_answer(answer.text) for answer in answers]
    correct = [p is not None and numbers_equal(p, expected)
               for p, expected in zip(predicted, examples["answer"], strict=True)]
    predictions = pd.DataFrame({"id": examples["id"].to_numpy(), "completion": [a.text for a in answers],
                                "predicted": predicted, "expected": examples["answer"].to_numpy(),
                                "correct": correct})
    return Accuracy(accuracy=float(sum(correct)) / max(1, len(correct)), predictions=predictions)
