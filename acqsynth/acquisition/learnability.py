"""Learnability reward (beyond the paper, after Absolute Zero and R-Zero): how close the sample is to the edge of
what the student can do. The student answers the question k times (the samples answer variance reads too); p = the
share of those answers that match the sample's verified answer. reward = 1 - p when p > 0, else 0: the most for a
question the student gets right only now and then, nothing for one it always gets right (nothing to learn) or never
does (beyond its reach, or a wrong answer the verifier missed)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def learnability_rewards(answers: Sequence[Sequence[str | None]], references: Sequence[str],
                         same: Callable[[str, str], bool]) -> np.ndarray:
    """1 - p (p > 0) or 0 for each sample, from its k extracted student answers and its verified answer."""
    rewards = []
    for group, reference in zip(answers, references, strict=True):
        p = sum(answer is not None and same(answer, reference) for answer in group) / len(group)
        rewards.append(1.0 - p if p > 0 else 0.0)
    return np.array(rewards, dtype=np.float64)
