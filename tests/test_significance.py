"""The paired two-way bootstrap, Holm's correction and the minimum detectable difference."""

import numpy as np
import pytest

from acqsynth import significance


def test_identical_arms_differ_by_nothing():
    rng = np.random.default_rng(0)
    correct = (rng.random((3, 50)) < 0.6).astype(float)
    comparison, draws = significance.compare_arms("a", correct, "b", correct.copy(), replicates=200)
    assert comparison.difference == 0.0 and np.all(draws == 0.0) and comparison.p_value == 1.0


def test_a_clear_gain_is_found_and_its_interval_covers_it():
    rng = np.random.default_rng(1)
    reference = (rng.random((4, 400)) < 0.5).astype(float)
    better = np.where(rng.random((4, 400)) < 0.2, 1.0, reference)  # about +10 points
    comparison, draws = significance.compare_arms("a", better, "b", reference, replicates=1000)
    low, high = significance.percentile_interval(draws, 0.05)
    assert comparison.p_value < 0.01 and low > 0 and low < comparison.difference < high
    assert (comparison.seeds, comparison.questions) == (4, 400)


def test_under_no_difference_the_test_rejects_about_alpha_of_the_time():
    rng = np.random.default_rng(2)
    rejections = 0
    for _ in range(60):
        skill = rng.random(200) < 0.6  # questions differ in difficulty; seeds add run-to-run noise
        a = np.where(rng.random((3, 200)) < 0.15, rng.random((3, 200)) < 0.5, skill).astype(float)
        b = np.where(rng.random((3, 200)) < 0.15, rng.random((3, 200)) < 0.5, skill).astype(float)
        rejections += significance.compare_arms("a", a, "b", b, replicates=400)[0].p_value < 0.05
    assert rejections <= 9  # 5% of 60 is 3; the bootstrap over 3 seeds is a little liberal, not wildly


def test_holm_adjusts_step_down_in_input_order():
    assert significance.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert significance.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert significance.holm_levels([0.01, 0.04, 0.03], 0.05) == pytest.approx([0.05 / 3, 0.05, 0.05 / 2])


def test_minimum_detectable_difference_is_z_alpha_plus_z_power_standard_errors():
    assert significance.minimum_detectable_difference(0.01, 0.05) == pytest.approx(0.028016, abs=1e-5)


def test_mismatched_matrices_are_refused():
    with pytest.raises(ValueError, match="seeds x questions"):
        significance.paired_bootstrap(np.zeros((2, 3)), np.zeros((3, 3)))
