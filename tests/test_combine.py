import numpy as np
import pytest

from acqsynth.acquisition.combine import combine, combined_bounds, normalise


def test_normalisations():
    values = np.array([1.0, 3.0, 2.0, 2.0])
    assert normalise(values, "none").tolist() == values.tolist()
    assert normalise(values, "minmax").tolist() == [0.0, 1.0, 0.5, 0.5]
    z = normalise(values, "zscore")
    assert z.mean() == pytest.approx(0) and z.std() == pytest.approx(1)
    assert normalise(values, "rank").tolist() == [0.0, 1.0, 0.5, 0.5]
    for method in ("minmax", "zscore"):
        assert normalise(np.array([4.0, 4.0]), method).tolist() == [0.0, 0.0]
    assert normalise(np.array([4.0, 4.0]), "rank").tolist() == [0.5, 0.5]
    with pytest.raises(ValueError, match="normalisation"):
        normalise(values, "softmax")


def test_weighted_combination_uses_only_weighted_rewards():
    scores = {"confidence": np.array([1.0, 10.0]), "diversity": np.array([2.0, 0.0]),
              "proximity": np.array([np.nan, np.nan])}
    combined = combine(scores, {"confidence": 1.0, "diversity": 0.5, "proximity": 0.0}, "minmax")
    assert combined.tolist() == [0.5, 1.0]
    with pytest.raises(ValueError, match="answer_variance"):
        combine(scores, {"answer_variance": 1.0}, "none")


def test_combined_bounds():
    ranges = {"confidence": (1.0, 10.0), "gradient_magnitude": (0.0, None), "proximity": (-1.0, 1.0)}
    assert combined_bounds({"confidence": 2.0}, "none", ranges) == (2.0, 20.0)
    assert combined_bounds({"proximity": -1.0}, "none", ranges) == (-1.0, 1.0)
    assert combined_bounds({"confidence": 1.0, "gradient_magnitude": 1.0}, "none", ranges) == (1.0, None)
    assert combined_bounds({"confidence": 1.0, "gradient_magnitude": 1.0}, "rank", ranges) == (0.0, 2.0)
    assert combined_bounds({"confidence": 1.0}, "zscore", ranges) == (None, None)
