"""Loading any causal LM checkpoint (a local directory or a hub id) through one code path."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from acqsynth.domains.records import looks_like_hub_id

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                 "pytorch_model.bin.index.json")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json")


class CheckpointError(ValueError):
    """A checkpoint directory is incomplete; the message names the directory and the missing part."""


@dataclass
class LoadedModel:
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    name: str


def best_device() -> str:
    """`cuda` when a GPU is visible, else `cpu`; the environment variable ACQSYNTH_DEVICE (cpu, cuda or cuda:N)
    overrides it, e.g. to keep the models on the CPU while vLLM holds the GPU."""
    import torch

    chosen = os.environ.get("ACQSYNTH_DEVICE", "").strip()
    if not chosen:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if chosen != "cpu" and not re.fullmatch(r"cuda(:\d+)?", chosen):
        raise ValueError(f"ACQSYNTH_DEVICE: expected cpu, cuda or cuda:N, got {chosen!r}")
    if chosen != "cpu" and not torch.cuda.is_available():
        raise ValueError(f"ACQSYNTH_DEVICE={chosen} but no CUDA GPU is visible (torch.cuda.is_available() is False)")
    return chosen


def check_checkpoint(path: Path) -> None:
    if not path.is_dir():
        raise CheckpointError(f"{path}: checkpoint directory not found")
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{path}: missing config.json; expected a saved Hugging Face model directory")
    if not any((path / name).is_file() for name in _WEIGHT_FILES):
        raise CheckpointError(f"{path}: missing model weights; expected one of {list(_WEIGHT_FILES)}")
    if not any((path / name).is_file() for name in _TOKENIZER_FILES):
        raise CheckpointError(f"{path}: missing tokenizer; expected one of {list(_TOKENIZER_FILES)}")


def load_model(source: str | Path, device: str | None = None, training: bool = False) -> LoadedModel:
    """A local checkpoint directory (checked for weights and tokenizer first) or a hub id. On a GPU the weights are
    bfloat16 for inference; a model to train keeps float32 weights (the trainers' bf16 autocast still runs it in
    bfloat16: small updates to bfloat16 weights would round away)."""
    import torch
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM, AutoTokenizer

    local = Path(source)
    if local.exists():
        check_checkpoint(local)
    elif isinstance(source, Path) or not looks_like_hub_id(source):
        # Only an `org/name` string is a hub id: a missing directory must not be looked up on the network.
        raise CheckpointError(f"{source}: no such model directory (and not a hub id like 'org/name')")
    device = device or best_device()
    on_gpu = device.startswith("cuda")
    dtype = torch.bfloat16 if on_gpu and not training and torch.cuda.is_bf16_supported() else torch.float32
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(source))
        model = AutoModelForCausalLM.from_pretrained(str(source), dtype=dtype).to(device)
    except (OSError, ValueError, SafetensorError) as error:
        if not local.exists():
            raise
        # A truncated or corrupted file: say which checkpoint (the libraries' messages often name none).
        raise CheckpointError(f"{local}: cannot be loaded ({type(error).__name__}: {error})") from error
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.eval()
    return LoadedModel(model=model, tokenizer=tokenizer, name=str(source))


def missing_model(source: str) -> str | None:
    """Why `source` could not be loaded without a download, or None if it can: a local directory must be a complete
    checkpoint; a hub id must already be in the local Hugging Face cache. Reads no weights."""
    local = Path(source).expanduser()
    if local.exists():
        try:
            check_checkpoint(local)
        except CheckpointError as error:
            return str(error)
        return None
    if not looks_like_hub_id(source):
        return f"{source}: no such model directory (and not a hub id like 'org/name')"
    from huggingface_hub import try_to_load_from_cache

    cached = [try_to_load_from_cache(source, name) for name in ("config.json", *_WEIGHT_FILES)]
    if not isinstance(cached[0], str):
        return (f"{source}: not in the local Hugging Face cache; download it first "
                f"(`hf download {source}`) or point to a local directory")
    if not any(isinstance(path, str) for path in cached[1:]):
        return f"{source}: config.json is cached but no weights; download the whole model (`hf download {source}`)"
    return None


# What transformers sets as a tokenizer's model_max_length when nothing says (int(1e30)): no length at all.
_UNSET_LENGTH = 10**20


def save_checkpoint(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, path: Path,
                    bf16: bool = False) -> None:
    """The one way a checkpoint is written: weights and tokenizer, the tokenizer's `model_max_length` the model's
    context length when it had none (a tiny tokenizer built here), so that truncation works as users expect.
    `bf16`: trained in bf16 (float32 master weights under autocast), saved in bf16, half the size."""
    path.mkdir(parents=True, exist_ok=True)
    if bf16:
        import torch

        model = model.to(torch.bfloat16)
    context = getattr(model.config, "max_position_embeddings", None)
    if context and tokenizer.model_max_length >= _UNSET_LENGTH:
        tokenizer.model_max_length = context
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
