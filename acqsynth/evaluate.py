"""Evaluate: verifiable accuracy of a student on each domain's evaluation split: the final answer of its completion
compared by value (math), by option (mcq), or run against the task's tests in the sandbox (code). In-domain gain is
measured on the target domain; forgetting on the other two."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from acqsynth.domains import domain_module, student_question
from acqsynth.generation.transformers_backend import generate
from acqsynth.models.loading import LoadedModel

if TYPE_CHECKING:
    from acqsynth.verify.sandbox import MissingLayers


@dataclass(frozen=True)
class Accuracy:
    accuracy: float
    predictions: pd.DataFrame  # id, completion, predicted, expected, correct


def grade(domain: str, examples: pd.DataFrame, completions: Sequence[str], workers: int = 1,
          missing_layers: MissingLayers = "refuse") -> list[bool]:
    """Whether each completion answers its example correctly; `examples` has the `answer` and `tests` columns."""
    module = domain_module(domain)
    return module.grade([module.extract_answer(text) for text in completions], examples, workers, missing_layers)


def accuracy(student: LoadedModel, examples: pd.DataFrame, domain: str, max_new_tokens: int, batch_size: int,
             description: str | None = None, workers: int = 1, missing_layers: MissingLayers = "refuse") -> Accuracy:
    answers = generate(student.model, student.tokenizer, [student_question(domain, q) for q in examples["question"]],
                       max_new_tokens=max_new_tokens, temperature=0.0, batch_size=batch_size,
                       description=description)
    completions = [answer.text for answer in answers]
    correct = grade(domain, examples, completions, workers, missing_layers)
    extract = domain_module(domain).extract_answer
    predictions = pd.DataFrame({"id": examples["id"].to_numpy(), "domain": domain, "completion": completions,
                                "predicted": [extract(text) for text in completions],
                                "expected": examples["answer"].to_numpy(), "correct": correct})
    return Accuracy(accuracy=float(sum(correct)) / max(1, len(correct)), predictions=predictions)
