import numpy as np
import pytest

from acqsynth.acquisition.diversity import DiversityArchive, facility_location_gains
from acqsynth.acquisition.proximity import load_centroids, proximity_rewards, save_centroids, seed_centroids


def unit(rng, n, d=16):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_identical_question_gets_its_best_centroid_similarity():
    seeds = unit(np.random.default_rng(0), 30)
    centroids = seed_centroids(seeds, k=4, seed=0)
    assert centroids.shape == (4, 16)
    np.testing.assert_allclose(np.linalg.norm(centroids, axis=1), 1.0, atol=1e-5)
    expected = max(float(seeds[3] @ c / np.linalg.norm(c)) for c in centroids)
    assert proximity_rewards(seeds[3:4], centroids)[0] == pytest.approx(expected, abs=1e-5)


def test_one_centroid_per_seed_gives_identical_question_one():
    seeds = unit(np.random.default_rng(1), 6)
    rewards = proximity_rewards(seeds, seed_centroids(seeds, k=6, seed=0))
    np.testing.assert_allclose(rewards, 1.0, atol=1e-5)
    assert np.all(rewards <= 1.0)


def test_k_clipped_to_distinct_seeds():
    seeds = np.repeat(unit(np.random.default_rng(2), 3), 4, axis=0)
    assert seed_centroids(seeds, k=10, seed=0).shape == (3, 16)


def test_centroids_saved_reloaded_and_stale_hash_refused(tmp_path):
    centroids = seed_centroids(unit(np.random.default_rng(3), 20), k=3, seed=0)
    path = tmp_path / "centroids.npz"
    save_centroids(path, centroids, "hash-a")
    np.testing.assert_array_equal(load_centroids(path, "hash-a"), centroids)
    with pytest.raises(ValueError) as error:
        load_centroids(path, "hash-b")
    assert str(path) in str(error.value) and "hash-a" in str(error.value) and "hash-b" in str(error.value)
    assert [p.name for p in tmp_path.iterdir()] == ["centroids.npz"]  # no temp file left behind


def brute_force_gains(candidates, archive):
    """Dense reference: F(archive ∪ batch) − F(archive ∪ batch without x) over the whole ground set, float64."""
    batch = candidates / np.linalg.norm(candidates, axis=1, keepdims=True)
    ground = np.concatenate([archive, batch]).astype(np.float64)
    sim = np.clip(ground @ ground.T, 0, None)

    def coverage(admitted):
        return sim[:, admitted].max(axis=1).sum()

    everything = list(range(len(ground)))
    return np.array([coverage(everything) - coverage([j for j in everything if j != len(archive) + i])
                     for i in range(len(batch))])


def test_duplicate_of_archive_item_gets_zero():
    archive = unit(np.random.default_rng(4), 50)
    gains = facility_location_gains(archive[[7, 20]], archive)
    np.testing.assert_allclose(gains, 0.0, atol=1e-5)


def test_identical_candidates_in_one_batch_both_get_zero_wherever_they_stand():
    rng = np.random.default_rng(5)
    archive, batch = unit(rng, 40), unit(rng, 3)
    gains = facility_location_gains(np.stack([batch[0], batch[1], batch[0]]), archive)
    assert gains[1] > 0.1
    assert gains[0] == pytest.approx(0.0, abs=1e-5) and gains[2] == pytest.approx(0.0, abs=1e-5)
    permuted = facility_location_gains(np.stack([batch[1], batch[0], batch[2]]), archive)
    np.testing.assert_allclose(permuted, facility_location_gains(np.stack([batch[0], batch[1], batch[2]]),
                                                                 archive)[[1, 0, 2]], atol=1e-6)


def test_orthogonal_new_item_gains_at_least_one():
    archive = np.eye(8, dtype=np.float32)[:4]
    candidates = np.eye(8, dtype=np.float32)[[5, 6]]
    gains = facility_location_gains(candidates, archive)
    assert np.all(gains >= 1.0 - 1e-6)
    assert facility_location_gains(candidates, np.zeros((0, 8), np.float32))[0] >= 1.0 - 1e-6


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 8192])
def test_matches_brute_force(chunk_size):
    rng = np.random.default_rng(6)
    archive = unit(rng, 100, d=8)
    candidates = np.concatenate([unit(rng, 10, d=8) * 3.0, archive[[1]]])  # unnormalised rows too
    expected = brute_force_gains(candidates, archive)
    np.testing.assert_allclose(facility_location_gains(candidates, archive, chunk_size), expected, atol=1e-4)
    assert np.all(expected >= 0) and np.all(expected <= len(candidates) + 1e-6)


def test_archive_buffer_grows_and_matches_function():
    rng = np.random.default_rng(7)
    archive = DiversityArchive(capacity=4, chunk_size=5)
    admitted = []
    for _ in range(5):
        batch = unit(rng, 3)
        np.testing.assert_allclose(archive.gains(batch),
                                   facility_location_gains(batch, np.concatenate(admitted) if admitted
                                                           else np.zeros((0, 16), np.float32)), atol=1e-6)
        archive.admit(batch)
        admitted.append(batch)
    assert len(archive) == 15 and archive._buffer.shape[0] == 16  # 4 -> 8 -> 16, doubling
    np.testing.assert_allclose(archive.embeddings, np.concatenate(admitted), atol=1e-6)
    with pytest.raises(ValueError, match="dimension"):
        archive.admit(unit(rng, 1, d=4))
