"""Teacher-forced batches for the rewards that read the student's view of a sample's answer (confidence, gradient
magnitude): prompt + answer, right-padded, labels only on the answer tokens.

With right padding and a causal model, padding never affects the real positions, so a row's logits and loss are
exactly those of the row alone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

IGNORE = -100


@dataclass
class AnswerBatch:
    input_ids: torch.Tensor  # (batch, length), right-padded with the pad token
    attention_mask: torch.Tensor  # (batch, length)
    labels: torch.Tensor  # (batch, length): the answer's token ids, IGNORE on prompt and padding


def encode_answers(tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str], answers: Sequence[str],
                   max_length: int) -> AnswerBatch:
    """Tokenise prompt and answer separately (so the answer's tokens are exactly known) and right-pad; a row longer
    than `max_length` loses the end of its answer."""
    import torch

    rows = []
    for prompt, answer in zip(prompts, answers, strict=True):
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        ids = (prompt_ids + answer_ids)[:max_length]
        labels = ([IGNORE] * len(prompt_ids) + answer_ids)[:max_length]
        rows.append((ids, labels))
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for row, (ids, target) in enumerate(rows):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(target)] = torch.tensor(target)
        attention_mask[row, : len(ids)] = 1
    return AnswerBatch(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
