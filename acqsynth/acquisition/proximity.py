"""Proximity reward: max cosine similarity of a question's embedding to the k-means centroids of the seed
questions' embeddings (whole questions, not the first character of each as in the authors' release)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from acqsynth.acquisition.embeddings import normalize_rows
from acqsynth.artifacts import ArtifactError, atomic_write_bytes


def seed_centroids(seed_embeddings: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Unit-norm centroids (cosine = dot). k is clipped to the number of distinct seeds, since k-means
    cannot place more centroids than distinct points."""
    from sklearn.cluster import KMeans

    points = normalize_rows(seed_embeddings)
    if len(points) == 0:
        raise ValueError("seed_centroids: no seed embeddings")
    clusters = min(k, len(np.unique(points, axis=0)))
    kmeans = KMeans(n_clusters=clusters, n_init=10, random_state=seed).fit(points)
    return normalize_rows(kmeans.cluster_centers_)


def save_centroids(path: Path, centroids: np.ndarray, seed_hash: str) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, centroids=np.asarray(centroids, dtype=np.float32), seed_hash=np.array(seed_hash))
    atomic_write_bytes(Path(path), buffer.getvalue())


def load_centroids(path: Path, expected_seed_hash: str) -> np.ndarray:
    """Refuses centroids computed from another seed set, so stale ones are never used."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: centroids not found; compute them from the seed set first")
    with np.load(path, allow_pickle=False) as data:
        seed_hash = str(data["seed_hash"])
        centroids = data["centroids"]
    if seed_hash != expected_seed_hash:
        raise ArtifactError(f"{path}: centroids were computed from seed set {seed_hash}, but the seed set is now "
                            f"{expected_seed_hash}; recompute them")
    return centroids


def proximity_rewards(question_embeddings: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Max cosine similarity of each row to any centroid, in [-1, 1]."""
    similarities = normalize_rows(question_embeddings) @ normalize_rows(centroids).T
    return np.clip(similarities.max(axis=1), -1.0, 1.0)
