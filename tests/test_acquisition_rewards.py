"""Known-answer tests of the confidence and answer-variance rewards, and the scorer that computes all five."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from acqsynth.acquisition.answer_variance import (answer_variance_rewards, clusters_by_embedding, clusters_by_match,
                                                  sample_answers)
from acqsynth.acquisition.learnability import learnability_rewards
from acqsynth.acquisition.confidence import confidence_rewards, mean_answer_margins
from acqsynth.acquisition.scoring import AcquisitionScorer, reward_ranges
from acqsynth.config import AcquisitionScoreConfig, Layout, REWARD_NAMES, TinyModelConfig
from acqsynth.domains.math.answers import answers_match, extract_answer
from acqsynth.domains.math.problems import MathDifficulty, generate_word_problems
from acqsynth.domains.sample import student_completion, student_prompt
from acqsynth.models.loading import LoadedModel, load_model
from acqsynth.models.tiny import build_llama, train_tokenizer

PROBLEMS = generate_word_problems(40, MathDifficulty(), seed=3)
PROMPTS = [student_prompt(p.question) for p in PROBLEMS[:6]]
ANSWERS = [student_completion(p.reasoning, p.answer) for p in PROBLEMS[:6]]


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer([student_prompt(p.question) + student_completion(p.reasoning, p.answer)
                            for p in PROBLEMS], 320)


class _Oracle(torch.nn.Module):
    """A student that puts probability ~1 on the true next token (certain) or, with `certain=False`, spreads it
    uniformly (as unsure as possible)."""

    def __init__(self, vocab_size: int, certain: bool):
        super().__init__()
        self.vocab_size, self.certain = vocab_size, certain
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    @property
    def device(self):
        return self.anchor.device

    def forward(self, input_ids, attention_mask=None):
        logits = torch.zeros(*input_ids.shape, self.vocab_size)
        if self.certain:
            next_tokens = torch.roll(input_ids, -1, dims=1)
            logits.scatter_(2, next_tokens.unsqueeze(-1), 50.0)
        return SimpleNamespace(logits=logits)


def test_a_certain_student_gets_the_minimum_confidence_reward(tokenizer):
    certain = LoadedModel(_Oracle(len(tokenizer), certain=True), tokenizer, "oracle")
    assert mean_answer_margins(certain, PROMPTS, ANSWERS, 4, 384) == pytest.approx(1.0)
    assert confidence_rewards(certain, PROMPTS, ANSWERS, (1.0, 10.0), 4, 384).tolist() == [1.0] * len(PROMPTS)


def test_a_uniform_student_gets_the_maximum_confidence_reward(tokenizer):
    unsure = LoadedModel(_Oracle(len(tokenizer), certain=False), tokenizer, "uniform")
    assert confidence_rewards(unsure, PROMPTS, ANSWERS, (1.0, 10.0), 4, 384).tolist() == [10.0] * len(PROMPTS)


def test_confidence_of_a_sample_does_not_depend_on_its_batch(tokenizer):
    model = build_llama(TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64),
                        tokenizer, 384, seed=0).eval()
    student = LoadedModel(model, tokenizer, "random")
    alone = [mean_answer_margins(student, [p], [a], 1, 384)[0] for p, a in zip(PROMPTS, ANSWERS)]
    together = mean_answer_margins(student, PROMPTS, ANSWERS, 6, 384)
    assert together == pytest.approx(np.array(alone), rel=1e-5)


def test_answer_clusters():
    assert clusters_by_match(["8", "8.0", "8"], answers_match) == 1
    assert clusters_by_match(["8", "9", None, None], answers_match) == 4
    rng = np.random.default_rng(0)
    centres = np.eye(3, 8)
    points = np.concatenate([centre + 0.01 * rng.standard_normal((5, 8)) for centre in centres])
    assert clusters_by_embedding(points / np.linalg.norm(points, axis=1, keepdims=True)) == 3


def test_identical_sampled_answers_give_one_over_k(smoke_workspace):
    student = load_model(Layout(smoke_workspace).base_student)

    def variance(temperature: float) -> np.ndarray:
        sampled = sample_answers(student, PROMPTS[:3], 4, temperature, max_new_tokens=40, batch_size=12)
        return answer_variance_rewards([[extract_answer(t) for t in group] for group in sampled], answers_match)

    assert variance(1e-4).tolist() == [0.25] * 3
    sampled = variance(5.0)
    assert ((sampled >= 0.25) & (sampled <= 1.0)).all() and sampled.max() > 0.25


def test_learnability_pays_for_what_the_student_gets_right_only_sometimes():
    answers = [["8", "8", "8", "8"], ["8", "9", None, "7"], ["1", "2", "3", None], ["8.0", "8", "5", "6"]]
    rewards = learnability_rewards(answers, ["8", "8", "8", "8"], answers_match)
    assert rewards.tolist() == [0.0, 0.75, 0.0, 0.5]  # always right, once, never, half the time


def test_scorer_computes_every_reward_within_its_range(smoke_workspace):
    from acqsynth.acquisition.proximity import seed_centroids

    config = AcquisitionScoreConfig(max_new_tokens=24, answer_variance_samples=3)
    scorer = AcquisitionScorer(load_model(Layout(smoke_workspace).base_student), config)
    seeds = [p.question for p in PROBLEMS[10:20]]
    scorer.centroids = seed_centroids(scorer.embed(seeds), 3, seed=0)
    scorer.start_archive(seeds)
    batch = PROBLEMS[:4] + PROBLEMS[:1]  # the last repeats the first
    scores = scorer.scores([p.question for p in batch], [p.reasoning for p in batch], [p.answer for p in batch],
                           REWARD_NAMES)
    for name, (low, high) in reward_ranges(config).items():
        assert len(scores[name]) == len(batch)
        assert np.isfinite(scores[name]).all()
        assert (low is None or scores[name].min() >= low) and (high is None or scores[name].max() <= high)
    assert scores["diversity"][-1] == pytest.approx(0.0, abs=1e-6)  # each copy is redundant given the other
    assert scores["diversity"][0] == pytest.approx(0.0, abs=1e-6) and scores["diversity"][1] > 0.0
