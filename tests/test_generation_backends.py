"""One contract for every generation backend (transformers here; vLLM where it is installed and a CUDA GPU is
visible), and the clear errors when vLLM is asked for but cannot run.

The contract runs on a tiny Llama whose layers add nothing (zero output projections): its next-token distribution
depends on the current token only and puts its maximum on that same token, about 4 logits above any other. Greedy
decoding thus repeats a prompt's last token, whatever the backend's batching or precision, while sampling at
temperature 1 still varies."""

import importlib.machinery
import sys
import types

import pytest
import torch

from acqsynth.config import TinyModelConfig
from acqsynth.domains.math.problems import MathDifficulty, generate_word_problems
from acqsynth.domains.sample import student_completion, student_prompt
from acqsynth.generation import BackendUnavailable, TransformersGenerator, grpo_vllm_kwargs, load_generator
from acqsynth.models.loading import load_model
from acqsynth.models.loading import save_checkpoint
from acqsynth.models.tiny import build_llama, train_tokenizer

PROBLEMS = generate_word_problems(40, MathDifficulty(), seed=5)
# Different lengths (padding) and a different last token each, so that every output names its prompt.
PROMPTS = [f"{student_prompt(problem.question)} {digit}" for digit, problem in zip(range(1, 7), PROBLEMS)]
MAX_NEW_TOKENS = 12


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    texts = [student_prompt(p.question) + student_completion(p.reasoning, p.answer) for p in PROBLEMS]
    tokenizer = train_tokenizer(texts, 320)
    # head size 64: one every vLLM attention backend supports.
    model = build_llama(TinyModelConfig(hidden_size=128, num_layers=2, num_heads=2, intermediate_size=256), tokenizer,
                        256, seed=0)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        # The token's own logit is about 128 * 0.04 = 5.1; another's about N(0, 0.45).
        model.model.embed_tokens.weight.normal_(0.0, 0.04, generator=torch.Generator().manual_seed(0))
    path = tmp_path_factory.mktemp("tiny") / "model"
    save_checkpoint(model, tokenizer, path)
    return path


@pytest.fixture(scope="module")
def tokenizer(checkpoint):
    return load_model(checkpoint).tokenizer


def _vllm_generator(checkpoint):
    pytest.importorskip("vllm")
    if not torch.cuda.is_available():
        pytest.skip("vLLM needs a CUDA GPU")
    from acqsynth.generation.vllm_backend import VLLMGenerator

    return VLLMGenerator(str(checkpoint), gpu_memory_utilization=0.3, enforce_eager=True)


@pytest.fixture(scope="module", params=["transformers", "vllm"])
def generator(request, checkpoint):
    if request.param == "vllm":
        return _vllm_generator(checkpoint)
    return TransformersGenerator(load_model(checkpoint), batch_size=4)  # 6 prompts: a full and a partial batch


def _repeated_last_token(tokenizer, prompt, n):
    last = tokenizer(prompt, add_special_tokens=False)["input_ids"][-1]
    return tokenizer.decode([last] * n, skip_special_tokens=True)


def test_one_generation_per_prompt_in_order(generator, tokenizer):
    generations = generator.generate(PROMPTS, MAX_NEW_TOKENS)
    assert [g.text for g in generations] == [_repeated_last_token(tokenizer, p, MAX_NEW_TOKENS) for p in PROMPTS]
    assert len({g.text for g in generations}) == len(PROMPTS)
    assert [g.margins for g in generations] == [[]] * len(PROMPTS)  # only asked for


def test_greedy_is_deterministic(generator):
    first = generator.generate(PROMPTS, MAX_NEW_TOKENS, with_margins=True)
    assert generator.generate(PROMPTS, MAX_NEW_TOKENS, with_margins=True) == first


def test_margins_one_per_generated_token_in_unit_interval(generator):
    for generation in generator.generate(PROMPTS, MAX_NEW_TOKENS, with_margins=True):
        assert len(generation.margins) == MAX_NEW_TOKENS  # never ends early: the model never picks end-of-sequence
        assert all(0.0 <= margin <= 1.0 for margin in generation.margins)
        # The same token at every step, so the same distribution and margin; well away from 0 and 1.
        assert max(generation.margins) - min(generation.margins) < 1e-2
        assert 0.05 < generation.margins[0] < 0.95


def test_max_new_tokens_bounds_the_completion(generator):
    short = generator.generate(PROMPTS, 3, with_margins=True)
    long = generator.generate(PROMPTS, MAX_NEW_TOKENS, with_margins=True)
    for a, b in zip(short, long, strict=True):
        assert len(a.margins) == 3
        assert b.text.startswith(a.text) and len(a.text) < len(b.text)
        assert a.margins == pytest.approx(b.margins[:3], abs=1e-2)


def test_sampling_is_reproducible_with_a_seed(generator):
    first = generator.generate(PROMPTS, MAX_NEW_TOKENS, temperature=1.0, with_margins=True, seed=7)
    assert generator.generate(PROMPTS, MAX_NEW_TOKENS, temperature=1.0, with_margins=True, seed=7) == first
    texts = [g.text for g in first]
    assert [g.text for g in generator.generate(PROMPTS, MAX_NEW_TOKENS, temperature=1.0, seed=8)] != texts
    assert [g.text for g in generator.generate(PROMPTS, MAX_NEW_TOKENS)] != texts
    assert all(len(g.margins) <= MAX_NEW_TOKENS for g in first)


def test_no_prompts_no_generations(generator):
    assert generator.generate([], MAX_NEW_TOKENS, with_margins=True) == []


def test_backends_agree(checkpoint):
    vllm_generator = _vllm_generator(checkpoint)
    reference = TransformersGenerator(load_model(checkpoint)).generate(PROMPTS, MAX_NEW_TOKENS, with_margins=True)
    served = vllm_generator.generate(PROMPTS, MAX_NEW_TOKENS, with_margins=True)
    assert [g.text for g in served] == [g.text for g in reference]
    for a, b in zip(served, reference, strict=True):
        assert a.margins == pytest.approx(b.margins, abs=2e-2)  # vLLM runs the float32 checkpoint in 16 bits


# -- clear errors ---------------------------------------------------------------------------------------------------

@pytest.fixture
def without_vllm(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import (and find_spec) of vllm now fail


@pytest.fixture
def vllm_without_gpu(monkeypatch):
    installed = types.ModuleType("vllm")
    installed.__spec__ = importlib.machinery.ModuleSpec("vllm", None)
    monkeypatch.setitem(sys.modules, "vllm", installed)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_vllm_backend_without_the_extra(without_vllm, checkpoint):
    with pytest.raises(BackendUnavailable, match=r"^generate\.backend: 'vllm' needs the optional extra: "
                                                 r"pip install 'acqsynth\[vllm\]'$"):
        load_generator("vllm", checkpoint)
    with pytest.raises(BackendUnavailable, match=r"^policy_update\.use_vllm needs the optional extra"):
        grpo_vllm_kwargs(True)


def test_vllm_backend_without_a_gpu(vllm_without_gpu, checkpoint):
    with pytest.raises(BackendUnavailable, match=r"^generate\.backend: 'vllm' needs a CUDA GPU; none is visible "
                                                 r"\(torch\.cuda\.is_available\(\) is False\)$"):
        load_generator("vllm", checkpoint)
    with pytest.raises(BackendUnavailable, match=r"^policy_update\.use_vllm needs a CUDA GPU"):
        grpo_vllm_kwargs(True)


def test_unknown_backend(checkpoint):
    with pytest.raises(ValueError, match="expected 'transformers' or 'vllm', got 'tgi'"):
        load_generator("tgi", checkpoint)


def test_load_generator_transformers(checkpoint, tokenizer):
    generator = load_generator("transformers", checkpoint, batch_size=2)
    assert [g.text for g in generator.generate(PROMPTS[:3], 4)] == [
        _repeated_last_token(tokenizer, p, 4) for p in PROMPTS[:3]]


def test_grpo_vllm_kwargs_are_grpo_config_fields(monkeypatch):
    import inspect

    from trl import GRPOConfig

    assert grpo_vllm_kwargs(False) == {"use_vllm": False}
    installed = types.ModuleType("vllm")
    installed.__spec__ = importlib.machinery.ModuleSpec("vllm", None)
    monkeypatch.setitem(sys.modules, "vllm", installed)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    kwargs = grpo_vllm_kwargs(True, gpu_memory_utilization=0.25, max_model_length=512)
    assert kwargs == {"use_vllm": True, "vllm_mode": "colocate", "vllm_gpu_memory_utilization": 0.25,
                      "vllm_max_model_length": 512}
    assert set(kwargs) <= set(inspect.signature(GRPOConfig).parameters)
