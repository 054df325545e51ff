"""The GRPO reward (unit) and real TRL GRPO / SFT steps on the tiny smoke models."""

import numpy as np
import pytest
import torch

from acqsynth.acquisition.confidence import reward_from_margins
from acqsynth.config import AcquisitionScoreConfig, Layout, RewardConfig
from acqsynth.generation.transformers_backend import _token_margins
from acqsynth.domains.math.problems import MathDifficulty, generate_word_problems
from acqsynth.domains.sample import format_sample
from acqsynth.policy import reward_bounds, reward_curve, rollout_rewards


def test_reward_from_margins_is_clipped_inverse():
    assert reward_from_margins(1.0, (1.0, 10.0)) == 1.0
    assert reward_from_margins(0.5, (1.0, 10.0)) == pytest.approx(2.0)
    assert reward_from_margins(0.0, (1.0, 10.0)) == 10.0


def test_token_margins_are_top1_minus_top2_probabilities():
    logits = torch.log(torch.tensor([[[0.7, 0.2, 0.1]], [[0.4, 0.4, 0.2]]]))
    margins = _token_margins([logits[:, 0, :]])
    assert margins[:, 0].tolist() == pytest.approx([0.5, 0.0], abs=1e-6)


def test_reward_bounds_cover_failed_verification():
    scoring = AcquisitionScoreConfig(confidence_clip=(1.0, 4.0))
    bonus = {"mode": "bonus", "normalisation": "none", "weights": {"confidence": 1.0}}
    assert reward_bounds(RewardConfig(**bonus, failed_verification=0.0), scoring) == (0.0, 4.0)
    assert reward_bounds(RewardConfig(**bonus, failed_verification=-1.0), scoring) == (-1.0, 4.0)
    minmax = RewardConfig(weights={"confidence": 1.0, "diversity": 0.5}, normalisation="minmax")
    assert reward_bounds(minmax, scoring) == (0.0, 1.5)
    unbounded = RewardConfig(**{**bonus, "weights": {"gradient_magnitude": 1.0}})
    assert reward_bounds(unbounded, scoring) == (0.0, None)
    gate = RewardConfig(weights={"confidence": 1.0}, verified_bonus=0.2, failed_verification=-5.0)
    assert reward_bounds(gate, scoring) == (0.0, pytest.approx(1.2))  # rank in [0, 1]; failed_verification unused


def test_reward_curve_per_step():
    import pandas as pd

    rollouts = pd.DataFrame({"step": [0, 0, 1, 1], "prompt_id": "p", "reward": [0.0, 2.0, 4.0, 4.0],
                             "parsed": [True, False, True, True], "verified": [True, False, True, True],
                             "acquisition_reward": [2.0, 0.0, 4.0, 4.0], "difficulty": ["1 steps", None, "1 steps",
                                                                            "2 steps"],
                             "acquisition_percentile": [0.25, None, 0.5, 1.0]})
    curve = reward_curve(rollouts)
    assert curve["mean_reward"].tolist() == [1.0, 4.0]
    assert curve["verified_rate"].tolist() == [0.5, 1.0]
    assert curve["mean_verified_acquisition"].tolist() == [2.0, 4.0]
    assert curve["informative_group_rate"].tolist() == [1.0, 0.0]  # equal rewards: no advantage
    assert curve["acquisition_percentile"].tolist() == [0.25, 0.75]  # over the scored rollouts
    # The difficulty mix is over the verified rollouts only.
    assert curve["difficulty: 1 steps"].tolist() == [1.0, 0.5]
    assert curve["difficulty: 2 steps"].tolist() == [0.0, 0.5]


def test_only_groups_with_two_differing_rewards_are_informative():
    import pandas as pd

    # Gate mode: an unverified rollout's reward is None, so a group needs two verified rollouts that differ.
    rollouts = pd.DataFrame({
        "step": [0] * 6 + [1] * 3, "prompt_id": ["a", "a", "a", "b", "b", "b", "a", "a", "a"],
        "reward": [0.3, None, None, 0.2, 0.9, None, 0.5, 0.1, 0.8],
        "parsed": True, "verified": [True, False, False, True, True, False, True, True, True],
        "acquisition_reward": 0.0, "difficulty": "1 steps", "acquisition_percentile": None})
    curve = reward_curve(rollouts)
    assert curve["informative_group_rate"].tolist() == [0.5, 1.0]
    assert curve["acquisition_percentile"].isna().all()  # no reference: no percentile


def _weights_differ(first, second) -> bool:
    from acqsynth.models.loading import load_model

    a, b = load_model(first).model.state_dict(), load_model(second).model.state_dict()
    return any(not torch.equal(a[name], b[name]) for name in a)


def test_grpo_and_sft_changed_the_models(smoke_workspace):
    layout = Layout(smoke_workspace)
    assert _weights_differ(layout.base_generator, layout.policy)
    assert _weights_differ(layout.base_student, layout.finetuned_student)


class FixedScorer:
    """Acquisition values looked up by question (unit tests of the reward's logic; real scoring is tested with the
    student in test_acquisition_rewards)."""

    domain = "math"

    def __init__(self, values: dict[str, float]) -> None:
        self.values = values
        self.scored: list[str] = []

    def scores(self, questions, reasonings, answers, names):
        self.scored += list(questions)
        return {name: np.array([self.values[q] for q in questions]) for name in names}


def _batch():
    """Two groups of four: group 0 has verified rollouts with values 1, 5, 3 and one wrong; group 1 has one verified
    rollout, two wrong ones and one that does not parse."""
    problems = generate_word_problems(8, MathDifficulty(), seed=11)
    good = [format_sample(p.question, p.reasoning, p.answer) for p in problems]
    wrong = [format_sample(p.question, p.reasoning, str(int(float(p.answer)) + 1)) for p in problems]
    completions = [good[0], good[1], wrong[2], good[3], good[4], wrong[5], wrong[6], "no sample here"]
    values = {problems[i].question: v for i, v in enumerate([1.0, 5.0, 7.0, 3.0, 9.0, 2.0, 4.0])}
    return completions, FixedScorer(values)


def test_gate_mode_leaves_unverified_rollouts_out_and_ranks_within_each_group():
    completions, scorer = _batch()
    rewards = rollout_rewards(completions, scorer, RewardConfig(format_weight=0.0), group_size=4)
    assert [r.verified for r in rewards] == [True, True, False, True, True, False, False, False]
    assert [r.reward for r in rewards] == [0.0, 1.0, None, 0.5, 0.0, None, None, None]  # ranks among the verified
    assert len(scorer.scored) == 4  # only verified rollouts are scored on the student
    # A small configured term for being verified: the unverified then count, below every verified rollout.
    bonus = rollout_rewards(completions, scorer, RewardConfig(format_weight=0.0, verified_bonus=0.2), group_size=4)
    assert [r.reward for r in bonus] == pytest.approx([0.2, 1.2, 0.0, 0.7, 0.2, 0.0, 0.0, 0.0])


def test_acquisition_percentile_is_read_against_the_reference_set():
    completions, scorer = _batch()
    reference = {"confidence": np.array([0.0, 2.0, 4.0, 6.0])}
    rewards = rollout_rewards(completions, scorer, RewardConfig(weights={"confidence": 1.0}, format_weight=0.0),
                              group_size=4, reference=reference)
    # Raw values 1, 5, 3 (group 0) and 9 (group 1): ranks within the groups differ from the absolute percentiles.
    assert [r.acquisition_percentile for r in rewards] == [0.25, 0.75, None, 0.5, 1.0, None, None, None]
    assert [r.difficulty is not None for r in rewards] == [True] * 7 + [False]  # only the unparsable has none
    assert all(r.difficulty.endswith("steps") for r in rewards[:7])


def test_acquisition_percentiles_tie_at_the_midrank_and_flip_for_negative_weights():
    from acqsynth.policy import acquisition_percentiles

    reference = {"confidence": np.array([1.0, 2.0, 2.0, 3.0]), "diversity": np.array([0.0, 1.0])}
    raw = {"confidence": np.array([2.0, 0.0]), "diversity": np.array([0.5, 2.0])}
    assert acquisition_percentiles(raw, {"confidence": reference["confidence"]}, {"confidence": 1.0}).tolist() == [
        0.5, 0.0]
    assert acquisition_percentiles(raw, {"diversity": reference["diversity"]}, {"diversity": -1.0}).tolist() == [
        0.5, 0.0]
    both = acquisition_percentiles(raw, reference, {"confidence": 1.0, "diversity": 3.0})
    assert both.tolist() == pytest.approx([(0.5 + 3 * 0.5) / 4, (0.0 + 3 * 1.0) / 4])


def test_bonus_and_paper_modes_normalise_over_the_batch():
    completions, scorer = _batch()
    bonus = rollout_rewards(completions, scorer, RewardConfig(mode="bonus", normalisation="minmax", format_weight=0.0,
                                                              failed_verification=-1.0), group_size=4)
    assert [r.reward for r in bonus] == pytest.approx([0.0, 0.5, -1.0, 0.25, 1.0, -1.0, -1.0, -1.0])
    paper = rollout_rewards(completions, scorer, RewardConfig(mode="paper", normalisation="minmax",
                                                              format_weight=0.0, failed_verification=-1.0),
                            group_size=4)
    # Every parsed rollout is scored, verified or not; only the unparsable one fails.
    assert [r.reward for r in paper] == pytest.approx([0.0, 0.5, 0.75, 0.25, 1.0, 0.125, 0.375, -1.0])


def test_verified_only_reward_needs_no_acquisition_weight():
    completions, scorer = _batch()
    config = RewardConfig(mode="bonus", weights={}, format_weight=0.0, verified_bonus=1.0)
    assert [r.reward for r in rollout_rewards(completions, scorer, config)] == [1, 1, 0, 1, 1, 0, 0, 0]
    assert scorer.scored == []
    with pytest.raises(ValueError, match="verified_bonus"):
        RewardConfig(weights={}, format_weight=0.0)
