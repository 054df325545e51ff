"""Text generation backends behind one interface: transformers (the default, CPU or GPU) and vLLM (optional extra,
CUDA only). Select one with `load_generator`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol

from acqsynth.generation.transformers_backend import Generation, TransformersGenerator
from acqsynth.generation.vllm_backend import BackendUnavailable, VLLMGenerator, grpo_vllm_kwargs

__all__ = ["BackendUnavailable", "Generation", "TextGenerator", "TransformersGenerator", "VLLMGenerator",
           "grpo_vllm_kwargs", "load_generator"]

Backend = Literal["transformers", "vllm"]


class TextGenerator(Protocol):
    def generate(self, prompts: Sequence[str], max_new_tokens: int, temperature: float = 0.0,
                 with_margins: bool = False, description: str | None = None,
                 seed: int | None = None) -> list[Generation]:
        """One Generation per prompt, in order: greedy when temperature is 0, else sampling (reproducible with
        `seed`); with `with_margins`, the p(top1) - p(top2) margin of each generated token before end-of-sequence.
        `description` shows a progress bar."""
        ...


def load_generator(backend: Backend, model_dir: str | Path, batch_size: int = 32,
                   gpu_memory_utilization: float = 0.9, seed: int = 0, calculator: bool = False) -> TextGenerator:
    """The checkpoint `model_dir` behind the chosen backend. `batch_size` and `calculator` are for transformers
    (vLLM schedules its own batches); `gpu_memory_utilization` and `seed` are vLLM's (transformers samples from
    torch's global seed)."""
    if backend == "transformers":
        from acqsynth.models.loading import load_model

        return TransformersGenerator(load_model(model_dir), batch_size, calculator)
    if calculator:
        raise ValueError("the calculator runs in transformers' sampling only; generate.calculator: false for vllm")
    if backend == "vllm":
        return VLLMGenerator(str(model_dir), gpu_memory_utilization=gpu_memory_utilization, seed=seed)
    raise ValueError(f"generate.backend: expected 'transformers' or 'vllm', got {backend!r}")
