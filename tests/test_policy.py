"""The GRPO reward (unit) and real TRL GRPO / SFT steps on the tiny smoke models."""

import pytest
import torch

from acqsynth.acquisition.confidence import reward_from_margins
from acqsynth.config import AcquisitionScoreConfig, Layout, RewardConfig
from acqsynth.generation.transformers_backend import _token_margins
from acqsynth.policy import reward_bounds, reward_curve


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
    assert reward_bounds(RewardConfig(failed_verification=0.0), scoring) == (0.0, 4.0)
    assert reward_bounds(RewardConfig(failed_verification=-1.0), scoring) == (-1.0, 4.0)
    minmax = RewardConfig(weights={"confidence": 1.0, "diversity": 0.5}, normalisation="minmax")
    assert reward_bounds(minmax, scoring) == (0.0, 1.5)
    unbounded = RewardConfig(weights={"gradient_magnitude": 1.0})
    assert reward_bounds(unbounded, scoring) == (0.0, None)


def test_reward_curve_per_step():
    import pandas as pd

    rollouts = pd.DataFrame({"step": [0, 0, 1, 1], "reward": [0.0, 2.0, 4.0, 4.0], "parsed": [True, False, True, True],
                             "verified": [True, False, True, True], "acquisition_reward": [2.0, 0.0, 4.0, 4.0]})
    curve = reward_curve(rollouts)
    assert curve["mean_reward"].tolist() == [1.0, 4.0]
    assert curve["verified_rate"].tolist() == [0.5, 1.0]
    assert curve["mean_verified_acquisition"].tolist() == [2.0, 4.0]


def _weights_differ(first, second) -> bool:
    from acqsynth.models.loading import load_model

    a, b = load_model(first).model.state_dict(), load_model(second).model.state_dict()
    return any(not torch.equal(a[name], b[name]) for name in a)


def test_grpo_and_sft_changed_the_models(smoke_workspace):
    layout = Layout(smoke_workspace)
    assert _weights_differ(layout.base_generator, layout.policy)
    assert _weights_differ(layout.base_student, layout.finetuned_student)
