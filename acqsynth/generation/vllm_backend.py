"""The vLLM backend (optional extra `acqsynth[vllm]`, CUDA GPUs only): the `TextGenerator` interface served by vLLM's
offline engine, which batches continuously (no `batch_size`) over a paged KV cache. Prompts are tokenized and
completions decoded with the checkpoint's own tokenizer, exactly as the transformers backend does, so both backends
read and write the same text. Margins come from the top-2 log-probabilities vLLM returns for every generated token;
vLLM takes them from the raw logits (before temperature), as the transformers backend does.

Also the GRPOConfig arguments that make TRL generate the rollouts with vLLM (`grpo_vllm_kwargs`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acqsynth.generation.transformers_backend import Generation

if TYPE_CHECKING:
    from vllm import CompletionOutput, SamplingParams

INSTALL_HINT = "pip install 'acqsynth[vllm]'"


class BackendUnavailable(RuntimeError):
    """The configured generation backend cannot run on this machine; the message names the setting and the fix."""


def require_vllm(setting: str) -> None:
    """Fail early, naming `setting`, when vLLM is not installed or no CUDA GPU is visible."""
    import importlib.util

    import torch

    if importlib.util.find_spec("vllm") is None:
        raise BackendUnavailable(f"{setting} needs the optional extra: {INSTALL_HINT}")
    if not torch.cuda.is_available():
        raise BackendUnavailable(f"{setting} needs a CUDA GPU; none is visible (torch.cuda.is_available() is False)")


class VLLMGenerator:
    """A vLLM engine on the checkpoint directory `model_dir`; it holds `gpu_memory_utilization` of the GPU (weights
    and KV cache) until it is deleted. `enforce_eager` skips CUDA-graph capture: a faster start for short runs."""

    def __init__(self, model_dir: str, gpu_memory_utilization: float = 0.9, dtype: str = "auto", seed: int = 0,
                 max_model_len: int | None = None, enforce_eager: bool = False) -> None:
        require_vllm("generate.backend: 'vllm'")
        from transformers import AutoTokenizer
        from vllm import LLM

        from acqsynth.models.loading import check_checkpoint

        if Path(model_dir).exists():
            check_checkpoint(Path(model_dir))
        self.llm = LLM(model=model_dir, dtype=dtype, seed=seed, gpu_memory_utilization=gpu_memory_utilization,
                       max_model_len=max_model_len, enforce_eager=enforce_eager)
        # The transformers tokenizer itself (not vLLM's wrapper): the same ids in and text out as the default backend.
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        # The transformers backend ends a completion at its first end-of-sequence or padding token.
        self._stop_ids = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id} - {None}

    def generate(self, prompts: Sequence[str], max_new_tokens: int, temperature: float = 0.0,
                 with_margins: bool = False, description: str | None = None,
                 seed: int | None = None) -> list[Generation]:
        """Greedy when temperature is 0, else sampling; with `seed`, prompt i samples with seed + i (one seed for
        all would give repeated prompts identical samples)."""
        if not prompts:
            return []
        requests = [{"prompt_token_ids": self.tokenizer(prompt, add_special_tokens=False)["input_ids"]}
                    for prompt in prompts]
        seeds = [None if seed is None else seed + index for index in range(len(prompts))]
        params = [_sampling(max_new_tokens, temperature, with_margins, request_seed) for request_seed in seeds]
        outputs = self.llm.generate(requests, params, use_tqdm=description is not None)
        return [self._generation(output.outputs[0], with_margins) for output in outputs]

    def _generation(self, completion: CompletionOutput, with_margins: bool) -> Generation:
        tokens = list(completion.token_ids)
        length = next((i for i, token in enumerate(tokens) if token in self._stop_ids), len(tokens))
        text = self.tokenizer.decode(tokens[:length], skip_special_tokens=True)
        margins = [_margin(step) for step in completion.logprobs[:length]] if with_margins else []
        return Generation(text=text, margins=margins)


def _sampling(max_new_tokens: int, temperature: float, with_margins: bool, seed: int | None) -> SamplingParams:
    from vllm import SamplingParams

    # We decode the token ids ourselves (see the module docstring), so vLLM need not.
    return SamplingParams(temperature=temperature, max_tokens=max_new_tokens, logprobs=2 if with_margins else None,
                          seed=seed, detokenize=False)


def _margin(step: dict[int, Any]) -> float:
    """p(top1) - p(top2) of one position; the dict may also hold the sampled token when it is not in the top 2."""
    top = sorted((logprob.logprob for logprob in step.values()), reverse=True)
    return math.exp(top[0]) - (math.exp(top[1]) if len(top) > 1 else 0.0)


def grpo_vllm_kwargs(use_vllm: bool, gpu_memory_utilization: float = 0.3,
                     max_model_length: int | None = None) -> dict[str, Any]:
    """GRPOConfig arguments for the rollouts: `model.generate` (use_vllm False) or a vLLM engine colocated in the
    trainer's process, on the training GPU, holding `gpu_memory_utilization` of it (the rest is for training).
    TRL starts that engine from `model.name_or_path`, so the generator must be loaded from a checkpoint directory."""
    if not use_vllm:
        return {"use_vllm": False}
    require_vllm("policy_update.use_vllm")
    kwargs: dict[str, Any] = {"use_vllm": True, "vllm_mode": "colocate",
                              "vllm_gpu_memory_utilization": gpu_memory_utilization}
    if max_model_length is not None:
        kwargs["vllm_max_model_length"] = max_model_length
    return kwargs
