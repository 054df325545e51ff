"""Math domain: GSM8K-format word problems (procedural, `problems`, and real, `records`), NuminaMath-style records,
and answers compared by value (numbers and LaTeX expressions, `answers`). This module is the domain's interface.

A record is an `Example`; for GSM8K its `reasoning` is the worked solution without the final `#### answer` line,
with one calculator annotation `<<a op b=c>>` per step so that `acqsynth.verify.math` can check every step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from acqsynth.domains.math.answers import answers_match, extract_answer
from acqsynth.domains.math.problems import MathDifficulty, procedural_examples
from acqsynth.domains.math.records import load_examples
from acqsynth.domains.sample import as_written, graded_by_answer

if TYPE_CHECKING:
    import pandas as pd

    from acqsynth.domains.sample import Verdict
    from acqsynth.verify.samples import VerifyRules
    from acqsynth.verify.sandbox import MissingLayers

__all__ = ["GENERATOR_INSTRUCTION", "NAME", "MathDifficulty", "answers_match", "difficulty", "extract_answer",
           "from_generator", "generator_view", "grade", "load_examples", "procedural_examples", "student_view",
           "verify"]

# ---------------------------------------------------------------------------------------------------------------
# The domain contract (the names every domain module exposes)

NAME = "math"


def difficulty(question: str, reasoning: str) -> str | None:
    """A sample's difficulty: its number of computation steps (calculator annotations); None without any."""
    steps = reasoning.count("<<")
    return f"{steps} steps" if steps else None


GENERATOR_INSTRUCTION = "Write a new grade-school math problem like this example."
# GSM8K's calculator fills in the value of each annotation while the generator samples (acqsynth.generation.calculator).
SAMPLED_WITH_CALCULATOR = True
student_view = generator_view = from_generator = as_written
# ---------------------------------------------------------------------------------------------------------------
# Verification and grading (the domain interface; see acqsynth.domains)


def verify(questions: list[str], reasonings: list[str], answers: list[str], rules: VerifyRules) -> list[Verdict]:
    from acqsynth.verify.math import verify_batch

    return verify_batch(questions, reasonings, answers, rules.math)


def grade(predicted: list[str | None], examples: pd.DataFrame, workers: int = 1,
          missing_layers: MissingLayers = "refuse") -> list[bool]:
    """Whether each predicted answer equals its example's answer in value."""
    return graded_by_answer(answers_match, predicted, list(examples["answer"]))
