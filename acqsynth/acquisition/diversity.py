"""Diversity reward: facility-location gain of each candidate question against an archive of admitted ones and the
rest of its batch.

Definition (similarities are cosines of unit embeddings, clipped at 0):
- ground set V = archive ∪ batch; F(S) = Σ_{v in V} max_{s in S} sim(v, s);
- the archive is admitted from the start and covers itself (sim(a, a) = 1), so only batch points can gain;
- the gain of candidate x is what the coverage would lose without it, everything else of the batch admitted:
      gain(x) = F(archive ∪ batch) − F(archive ∪ batch without x).
The reward is this raw gain, in [0, batch size], and it does not depend on where x sits in the batch: a copy of an
archive question gets ~0, two near-duplicates in one batch both get ~0 (each is redundant given the other), and a
question unlike everything else gets at least 1 (it covers itself).

The archive can hold 100k+ rows: the batch's cover by the archive is computed in chunks of archive rows
(memory O(batch × chunk), time linear in the archive); only the batch × batch matrix is built whole.
"""

from __future__ import annotations

import numpy as np

from acqsynth.acquisition.embeddings import normalize_rows


def _archive_cover(batch: np.ndarray, archive: np.ndarray, chunk_size: int) -> np.ndarray:
    cover = np.zeros(len(batch), dtype=np.float32)
    for start in range(0, len(archive), chunk_size):
        chunk = np.asarray(archive[start:start + chunk_size], dtype=np.float32)
        # Divide the similarities by the chunk's norms rather than normalise a copy of the chunk: memory stays
        # O(batch × chunk) even for an archive that is not unit-norm.
        norms = np.sqrt(np.einsum("ij,ij->i", chunk, chunk))
        similarities = batch @ chunk.T
        similarities /= np.maximum(norms, 1e-12)
        np.maximum(cover, similarities.max(axis=1), out=cover)
    return cover


def facility_location_gains(candidates: np.ndarray, archive: np.ndarray, chunk_size: int = 8192) -> np.ndarray:
    """Raw facility-location gain of each candidate given the archive and the rest of the batch (see the module
    docstring)."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    batch = normalize_rows(candidates)
    if len(batch) == 0:
        return np.zeros(0, dtype=np.float32)
    cover = _archive_cover(batch, archive, chunk_size)
    similarities = np.clip(batch @ batch.T, 0.0, None)  # [v, x]
    # Only the candidate that covers v best can lose coverage of v by leaving: down to the runner-up or the archive.
    best = similarities.argmax(axis=1)
    ordered = np.sort(similarities, axis=1)
    runner_up = ordered[:, -2] if len(batch) > 1 else np.zeros(len(batch), dtype=np.float32)
    loss = np.maximum(ordered[:, -1] - np.maximum(cover, runner_up), 0.0)
    return np.bincount(best, weights=loss, minlength=len(batch)).astype(np.float32)


class DiversityArchive:
    """Admitted question embeddings in a float32 buffer that doubles when full (no copy of the whole archive per
    step). During GRPO each step's batch is scored with `gains`, then its verified questions are `admit`ted."""

    def __init__(self, capacity: int = 1024, chunk_size: int = 8192) -> None:
        self._capacity = max(1, capacity)
        self._buffer: np.ndarray | None = None  # allocated on the first admit, when the dimension is known
        self._size = 0
        self.chunk_size = chunk_size

    def __len__(self) -> int:
        return self._size

    @property
    def embeddings(self) -> np.ndarray:
        if self._buffer is None:
            return np.zeros((0, 0), dtype=np.float32)
        return self._buffer[: self._size]

    def gains(self, batch_embeddings: np.ndarray) -> np.ndarray:
        return facility_location_gains(batch_embeddings, self.embeddings, self.chunk_size)

    def admit(self, embeddings: np.ndarray) -> None:
        rows = normalize_rows(embeddings)
        if rows.ndim != 2:
            raise ValueError(f"admit expects a 2-D array of embeddings, got shape {rows.shape}")
        if self._buffer is None:
            self._buffer = np.empty((self._capacity, rows.shape[1]), dtype=np.float32)
        elif rows.shape[1] != self._buffer.shape[1]:
            raise ValueError(f"admit: embeddings have dimension {rows.shape[1]}, the archive holds "
                             f"{self._buffer.shape[1]}")
        needed = self._size + len(rows)
        if needed > len(self._buffer):
            grown = np.empty((max(needed, 2 * len(self._buffer)), self._buffer.shape[1]), dtype=np.float32)
            grown[: self._size] = self._buffer[: self._size]
            self._buffer = grown
        self._buffer[self._size:needed] = rows
        self._size = needed
