"""Batched generation with transformers (the default backend): left-padded batches, sampling or greedy, and, for the
confidence reward, the top-1 minus top-2 probability margin of every generated token. `TransformersGenerator` puts
it behind the backend interface (`acqsynth.generation.TextGenerator`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from acqsynth.models.loading import LoadedModel


@dataclass
class Generation:
    text: str
    margins: list[float] = field(default_factory=list)  # one per generated token, before end-of-sequence


def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    max_new_tokens: int,
    temperature: float = 0.0,
    batch_size: int = 32,
    with_margins: bool = False,
    description: str | None = None,
    calculator: bool = False,
) -> list[Generation]:
    """Greedy when temperature is 0, else sampling. Seed torch beforehand for reproducible samples. With
    `calculator`, calculator annotations get their values forced (`acqsynth.generation.calculator`)."""
    import torch
    from transformers import LogitsProcessorList

    from acqsynth.generation.calculator import CalculatorLogitsProcessor
    from acqsynth.progress import progress

    tokenizer.padding_side = "left"
    results: list[Generation] = []
    batches = range(0, len(prompts), batch_size)
    with progress(description, len(prompts)) as bar:
        for start in batches:
            chunk = list(prompts[start : start + batch_size])
            inputs = tokenizer(chunk, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
            sampling = temperature > 0
            with torch.inference_mode():
                output = model.generate(
                    **inputs,
                    max_new_tokens=max_new_tokens,
                    do_sample=sampling,
                    temperature=temperature if sampling else None,
                    top_p=None,
                    top_k=None,
                    pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=tokenizer.eos_token_id,
                    return_dict_in_generate=True,
                    output_logits=with_margins,
                    logits_processor=LogitsProcessorList([CalculatorLogitsProcessor(tokenizer)] if calculator else []),
                )
            new_tokens = output.sequences[:, inputs["input_ids"].shape[1] :]
            finished = _lengths_before_eos(new_tokens, tokenizer.eos_token_id, tokenizer.pad_token_id)
            margins = _token_margins(output.logits) if with_margins else None
            for row in range(new_tokens.shape[0]):
                length = int(finished[row])
                text = tokenizer.decode(new_tokens[row, :length], skip_special_tokens=True)
                row_margins = margins[row, :length].tolist() if margins is not None else []
                results.append(Generation(text=text, margins=row_margins))
            bar.advance(len(chunk))
    return results


@dataclass(frozen=True)
class TransformersGenerator:
    """`generate` on a loaded model, `batch_size` prompts per forward batch, with or without the calculator."""

    loaded: LoadedModel
    batch_size: int = 32
    calculator: bool = False

    def generate(self, prompts: Sequence[str], max_new_tokens: int, temperature: float = 0.0,
                 with_margins: bool = False, description: str | None = None,
                 seed: int | None = None) -> list[Generation]:
        if seed is not None:
            import torch

            torch.manual_seed(seed)
        return generate(self.loaded.model, self.loaded.tokenizer, prompts, max_new_tokens, temperature,
                        self.batch_size, with_margins, description, self.calculator)


def _lengths_before_eos(tokens, eos_id: int, pad_id: int):
    """Number of generated tokens before the first end-of-sequence (or padding) token, per row."""
    import torch

    stop = (tokens == eos_id) | (tokens == pad_id)
    positions = torch.arange(tokens.shape[1], device=tokens.device).expand_as(tokens)
    return torch.where(stop, positions, torch.full_like(positions, tokens.shape[1])).min(dim=1).values


def _token_margins(scores):
    """p(top1) - p(top2) at every generated position, from the raw logits (temperature 1)."""
    import torch

    logits = torch.stack(scores, dim=1).float()  # (batch, steps, vocab)
    top2 = torch.softmax(logits, dim=-1).topk(2, dim=-1).values
    return top2[..., 0] - top2[..., 1]
