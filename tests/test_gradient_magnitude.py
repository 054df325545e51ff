"""Gradient-magnitude reward: the vectorised per-sample gradient norms against one backward pass per sample."""

from __future__ import annotations

import pytest
import torch

from acqsynth.acquisition import gradient_magnitude as gm
from acqsynth.acquisition.gradient_magnitude import gradient_norms, gradient_norms_naive
from acqsynth.acquisition.student_batch import encode_answers
from acqsynth.config import TinyModelConfig
from acqsynth.domains.math.problems import MathDifficulty, generate_word_problems
from acqsynth.domains.sample import student_completion, student_prompt
from acqsynth.models.loading import LoadedModel
from acqsynth.models.tiny import build_llama, train_tokenizer

RTOL = 1e-4
MAX_LENGTH = 384


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny matrices: one thread is as fast, and far steadier on a shared machine than oversubscribed threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def problems():
    problems = generate_word_problems(200, MathDifficulty(max_steps=4, operations=("+", "-", "*")), seed=0)
    return [(student_prompt(p.question), student_completion(p.reasoning, p.answer)) for p in problems]


@pytest.fixture(scope="module")
def student(problems) -> LoadedModel:
    tokenizer = train_tokenizer([prompt + answer for prompt, answer in problems], vocab_size=640)
    model = build_llama(TinyModelConfig(), tokenizer, max_length=MAX_LENGTH, seed=0)
    return LoadedModel(model=model, tokenizer=tokenizer, name="tiny-student")


@pytest.fixture(scope="module")
def samples(problems, student):
    """12 samples of clearly different lengths (prompt + answer tokens), in no particular order."""
    lengths = encode_answers(student.tokenizer, [p for p, _ in problems], [a for _, a in problems],
                             MAX_LENGTH).attention_mask.sum(dim=1).tolist()
    by_length = sorted(range(len(problems)), key=lambda i: lengths[i])
    picked = [by_length[round(k * (len(by_length) - 1) / 11)] for k in range(12)]
    picked = picked[::2] + picked[1::2]  # mixed, so batches are not already sorted
    return [problems[i][0] for i in picked], [problems[i][1] for i in picked]


def assert_close(actual, expected, rtol=RTOL):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        assert e > 0
        assert abs(a - e) <= rtol * e, (a, e, abs(a - e) / e)


def test_tiny_student_ties_its_embeddings(student):
    model = student.model
    assert model.config.tie_word_embeddings
    assert model.lm_head.weight is model.model.embed_tokens.weight


def test_samples_have_different_lengths(student, samples):
    lengths = encode_answers(student.tokenizer, *samples, MAX_LENGTH).attention_mask.sum(dim=1).tolist()
    assert len(set(lengths)) >= 8


@pytest.mark.parametrize("batch_size", [5, 1, 32])
def test_vectorised_matches_naive(student, samples, batch_size):
    expected = gradient_norms_naive(student, *samples)
    assert_close(gradient_norms(student, *samples, batch_size=batch_size), expected)


def test_ghost_norms_and_materialised_gradients_agree_with_naive(student, samples, monkeypatch):
    expected = gradient_norms_naive(student, *samples)
    monkeypatch.setattr(gm, "_prefer_ghost", lambda use: not use.dense)  # every factored gradient by Gram matrices
    assert_close(gradient_norms(student, *samples, batch_size=4), expected)
    monkeypatch.setattr(gm, "_prefer_ghost", lambda use: False)  # every gradient materialised
    assert_close(gradient_norms(student, *samples, batch_size=4), expected)


def test_norm_does_not_depend_on_the_rest_of_the_batch(student, samples, problems):
    prompts, answers = samples
    alone = gradient_norms(student, prompts, answers, batch_size=32)
    order = [7, 2, 11, 0, 5, 9, 1, 3, 10, 6, 4, 8]
    permuted = gradient_norms(student, [prompts[i] for i in order], [answers[i] for i in order], batch_size=3)
    assert_close(permuted, [alone[i] for i in order], rtol=1e-5)
    # Different neighbours: the first sample next to long unrelated samples, then on its own.
    neighbours = [problems[i] for i in range(150, 160)]
    mixed = gradient_norms(student, [prompts[0]] + [p for p, _ in neighbours],
                           [answers[0]] + [a for _, a in neighbours], batch_size=32)
    single = gradient_norms(student, prompts[:1], answers[:1], batch_size=32)
    assert_close([mixed[0], single[0]], [alone[0], alone[0]], rtol=1e-5)


def test_long_and_short_answers_and_truncation(student, samples):
    prompt = samples[0][0]
    long_answer = samples[1][1] * 3
    prompts = [prompt, prompt, prompt, prompt]
    answers = [" 7", long_answer, samples[0][1], ""]  # short, long, ordinary, only the end-of-sequence token
    expected = gradient_norms_naive(student, prompts, answers)
    assert_close(gradient_norms(student, prompts, answers, batch_size=2), expected)
    assert expected[1] != pytest.approx(expected[0], rel=1e-3)
    # Truncated by max_length: the answer loses its end (still exact); or has no token left (norm 0).
    prompt_tokens = len(student.tokenizer(prompt, add_special_tokens=False)["input_ids"])
    for max_length in (prompt_tokens + 5, prompt_tokens):
        expected = gradient_norms_naive(student, prompts[:2], answers[:2], max_length=max_length)
        actual = gradient_norms(student, prompts[:2], answers[:2], batch_size=2, max_length=max_length)
        if max_length == prompt_tokens:
            assert expected == [0.0, 0.0] and actual == [0.0, 0.0]
        else:
            assert_close(actual, expected)


def test_model_state_is_left_as_it_was(student, samples):
    model = student.model
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    marker = torch.full_like(model.model.norm.weight, 3.0)
    model.model.norm.weight.grad = marker
    frozen = model.model.layers[0].mlp.up_proj.weight
    frozen.requires_grad_(False)
    try:
        for training in (True, False):
            model.train(training)
            expected = gradient_norms_naive(student, *samples)
            actual = gradient_norms(student, *samples, batch_size=4)
            assert model.training is training
            assert all(m.training is training for m in model.modules())
            assert_close(actual, expected)  # every parameter counted, the frozen one too
        assert frozen.requires_grad is False
        assert model.model.norm.weight.grad is marker
        for name, p in model.named_parameters():
            assert torch.equal(p, before[name]), name
            if p is not model.model.norm.weight:
                assert p.grad is None, name
    finally:
        frozen.requires_grad_(True)
        model.model.norm.weight.grad = None
        model.eval()


def test_works_under_no_grad_and_on_edge_inputs(student, samples):
    with torch.no_grad():
        assert_close(gradient_norms(student, *samples, batch_size=6), gradient_norms_naive(student, *samples))
    assert gradient_norms(student, [], []) == []
    with pytest.raises(ValueError, match="one answer per prompt"):
        gradient_norms(student, ["a"], [])
    with pytest.raises(ValueError, match="batch_size"):
        gradient_norms(student, ["a"], ["b"], batch_size=0)


def test_untied_model_with_biases(student, samples):
    """Other module shapes: separate input and output embeddings, biased projections."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = student.tokenizer
    torch.manual_seed(1)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=MAX_LENGTH,
                         tie_word_embeddings=False, attention_bias=True, mlp_bias=True,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # non-trivial biases and norm weights
        for name, p in model.named_parameters():
            if name.endswith("bias") or "norm" in name:
                p.add_(0.1 * torch.randn_like(p))
    other = LoadedModel(model=model, tokenizer=tokenizer, name="untied")
    assert model.lm_head.weight is not model.model.embed_tokens.weight
    assert_close(gradient_norms(other, *samples, batch_size=5), gradient_norms_naive(other, *samples))


def test_bfloat16_model(student, samples):
    """Computed in the model's dtype, accumulated in float32; bf16 rounding differs between batched and single
    passes, so only a loose agreement."""
    import copy

    model = copy.deepcopy(student.model).to(torch.bfloat16)
    other = LoadedModel(model=model, tokenizer=student.tokenizer, name="bf16")
    assert_close(gradient_norms(other, *samples, batch_size=6), gradient_norms_naive(other, *samples), rtol=5e-2)
