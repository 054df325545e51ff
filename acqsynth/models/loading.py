"""Loading any causal LM checkpoint (a local directory or a hub id) through one code path."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

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
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def check_checkpoint(path: Path) -> None:
    if not path.is_dir():
        raise CheckpointError(f"{path}: checkpoint directory not found")
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{path}: missing config.json; expected a saved Hugging Face model directory")
    if not any((path / name).is_file() for name in _WEIGHT_FILES):
        raise CheckpointError(f"{path}: missing model weights; expected one of {list(_WEIGHT_FILES)}")
    if not any((path / name).is_file() for name in _TOKENIZER_FILES):
        raise CheckpointError(f"{path}: missing tokenizer; expected one of {list(_TOKENIZER_FILES)}")


def load_model(source: str | Path, device: str | None = None) -> LoadedModel:
    """A local checkpoint directory (checked for weights and tokenizer first) or a hub id."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    local = Path(source)
    if local.exists():
        check_checkpoint(local)
    device = device or best_device()
    dtype = torch.bfloat16 if device == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(str(source), dtype=dtype).to(device)
    model.eval()
    return LoadedModel(model=model, tokenizer=tokenizer, name=str(source))
