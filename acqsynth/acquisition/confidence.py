"""Confidence reward: how unsure the student is of the sample's answer. The student reads the question, the
sample's reasoning and its answer (teacher-forced, one forward pass); at every token of the answer itself we take
the margin p(top1) - p(top2) of its next-token distribution. reward = 1 / mean margin, clipped: an unsure student
(small margins) gives a high reward, a certain one the minimum."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from acqsynth.acquisition.student_batch import IGNORE, encode_answers
from acqsynth.models.loading import LoadedModel


def reward_from_margins(mean_margin: float, clip: tuple[float, float]) -> float:
    low, high = clip
    if mean_margin <= 1.0 / high:
        return high
    return min(high, max(low, 1.0 / mean_margin))


def mean_answer_margins(student: LoadedModel, prompts: Sequence[str], answers: Sequence[str], batch_size: int,
                        max_length: int) -> np.ndarray:
    """Mean over each answer's tokens of the student's top-1 minus top-2 probability."""
    import torch

    margins = []
    for start in range(0, len(prompts), batch_size):
        batch = encode_answers(student.tokenizer, prompts[start : start + batch_size],
                               answers[start : start + batch_size], max_length)
        device = student.model.device
        with torch.inference_mode():
            logits = student.model(input_ids=batch.input_ids.to(device),
                                   attention_mask=batch.attention_mask.to(device)).logits
        # Position t predicts token t + 1.
        predicting_answer = (batch.labels[:, 1:] != IGNORE).to(device)
        top2 = torch.softmax(logits[:, :-1].float(), dim=-1).topk(2, dim=-1).values
        margin = (top2[..., 0] - top2[..., 1]) * predicting_answer
        margins.append((margin.sum(dim=1) / predicting_answer.sum(dim=1).clamp(min=1)).cpu().numpy())
    return np.concatenate(margins) if margins else np.zeros(0)


def confidence_rewards(student: LoadedModel, prompts: Sequence[str], answers: Sequence[str],
                       clip: tuple[float, float], batch_size: int, max_length: int) -> np.ndarray:
    margins = mean_answer_margins(student, prompts, answers, batch_size, max_length)
    return np.array([reward_from_margins(float(m), clip) for m in margins], dtype=np.float64)
