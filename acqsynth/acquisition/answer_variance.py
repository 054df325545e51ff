"""Answer variance reward: the student answers the question k times (sampling); reward = number of distinct answer
clusters / k. k identical answers give 1/k; k different ones give 1. Verifiable answers are clustered by their
domain's notion of the same answer (equal value, same option, same code); free text by embedding clustering
(HDBSCAN, as the method does)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from acqsynth.generation.transformers_backend import generate
from acqsynth.models.loading import LoadedModel


def clusters_by_match(answers: Sequence[str | None], same: Callable[[str, str], bool]) -> int:
    """Greedy clusters of answers that `same` says match the cluster's first answer; an answer that could not be
    extracted (None) is a cluster of its own."""
    representatives: list[str] = []
    unreadable = 0
    for answer in answers:
        if answer is None:
            unreadable += 1
        elif not any(same(answer, representative) for representative in representatives):
            representatives.append(answer)
    return len(representatives) + unreadable


def clusters_by_embedding(embeddings: np.ndarray, min_cluster_size: int = 2) -> int:
    """HDBSCAN clusters of unit-normalised embeddings; each noise point counts as a cluster of its own."""
    from sklearn.cluster import HDBSCAN

    if len(embeddings) < min_cluster_size:
        return len(embeddings)
    labels = HDBSCAN(min_cluster_size=min_cluster_size, metric="euclidean", copy=True).fit_predict(embeddings)
    return len(set(labels[labels >= 0])) + int((labels < 0).sum())


def sample_answers(student: LoadedModel, prompts: Sequence[str], k: int, temperature: float, max_new_tokens: int,
                   batch_size: int) -> list[list[str]]:
    """k sampled completions per prompt, grouped by prompt."""
    repeated = [prompt for prompt in prompts for _ in range(k)]
    texts = [g.text for g in generate(student.model, student.tokenizer, repeated, max_new_tokens, temperature,
                                      batch_size)]
    return [texts[i * k : (i + 1) * k] for i in range(len(prompts))]


def answer_variance_rewards(answers: Sequence[Sequence[str | None]], same: Callable[[str, str], bool]) -> np.ndarray:
    """Distinct answer clusters / k of each sample's k extracted student answers (sample_answers, then the domain's
    extract_answer)."""
    return np.array([clusters_by_match(group, same) / len(group) for group in answers], dtype=np.float64)
