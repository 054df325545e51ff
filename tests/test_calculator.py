"""The calculator while sampling: the value of every math `<<expression=` annotation (GSM8K's calculator) and of
every code test on a procedural task's function is forced."""

import re

import pytest
import torch

from acqsynth.config import Layout
from acqsynth.generation.calculator import CalculatorLogitsProcessor, calculator_result
from acqsynth.verify.math import evaluate_expression


@pytest.mark.parametrize(("text", "forced"), [
    ("Tom has 5 + 3 = <<5+3=", "8>>"),
    ("so <<5+3=8>>8 apples, then <<8*3/2=", "12>>"),
    ("<<12/5=", "2.4>>"),
    ("<<10-25=", "-15>>"),
    ("<<5+3=8>>", None),  # closed: nothing to force
    ("<<5+x=", None),  # not arithmetic: left to the model (verification judges it)
    ("<<1/0=", None),
    ("5 + 3 =", None),  # outside an annotation
    # Code: the value the task's function gives, after `==` with or without its space.
    ("Tests:\nassert add_3_then_times_2(5) ==", " 16"),
    ("assert add_3(1) == 4\nassert add_3(5) == ", "8"),
    ("assert keep_over_4_then_sum([1, 5, 9]) ==", " 14"),
    ("assert reverse_then_repeat_2('ab') ==", " 'baba'"),
    ("assert clamp_2_9(12) ==", " 9"),
    ("assert frobnicate(1) ==", None),  # no procedural function: left to the model
    ("assert add_3('a') ==", None),  # arguments the function cannot take
    ("assert add_3(x) ==", None),  # not a literal
    ("assert add_3(1) == 4", None),  # written already
])
def test_calculator_result(text, forced):
    assert calculator_result(text) == forced


class _Tokenizer:
    """Characters as tokens: enough to watch the processor force a value one token at a time."""

    vocab = "0123456789<>=+-*/. abcx"

    def encode(self, text, add_special_tokens=False):
        return [self.vocab.index(c) for c in text]

    def decode(self, ids, skip_special_tokens=True):
        return "".join(self.vocab[int(i)] for i in ids)


def test_the_processor_forces_the_value_then_lets_the_model_write():
    tokenizer = _Tokenizer()
    processor = CalculatorLogitsProcessor(tokenizer)
    rows = [tokenizer.encode("a <<5+3="), tokenizer.encode("a b c x ")]
    ids = torch.tensor(rows)
    written = ["", ""]
    for _ in range(4):
        scores = processor(ids, torch.zeros(2, len(tokenizer.vocab)))
        step = [int(torch.argmax(scores[0])), int(torch.argmax(scores[1]))]
        assert torch.isinf(scores[1]).sum() == 0  # the other row samples freely
        written = [w + tokenizer.vocab[t] for w, t in zip(written, step)]
        ids = torch.cat([ids, torch.tensor([[step[0]], [tokenizer.encode("a")[0]]])], dim=1)
    assert written[0].startswith("8>>") and not torch.isinf(scores[0]).any()


def test_generated_annotations_carry_their_values(smoke_workspace):
    from acqsynth.generation.transformers_backend import generate
    from acqsynth.models.loading import load_model

    generator = load_model(Layout(smoke_workspace).base_generator)
    prompts = ["Write a new grade-school math problem like this example. Tom has <<5+3="] * 8
    torch.manual_seed(0)
    texts = [g.text for g in generate(generator.model, generator.tokenizer, prompts, 48, 1.0, 8, calculator=True)]
    assert all(text.startswith("8>>") for text in texts)
    for text in texts:
        for expression, value in re.findall(r"<<([^<>=]+)=([^<>]*)>>", text):
            try:
                expected = evaluate_expression(expression)
            except ValueError:
                continue
            assert evaluate_expression(value) == expected, text


def test_grpo_rollouts_are_sampled_with_the_calculator(smoke_workspace):
    from acqsynth import artifacts

    rollouts = artifacts.read_table(Layout(smoke_workspace).rollouts)
    annotated = rollouts[rollouts["completion"].str.contains("<<", regex=False)]
    assert len(annotated) > 0
    # Without the calculator the smoke generator's wrong values are the commonest rejection.
    assert not rollouts["reason"].str.contains(r"computes -?\d", regex=True).any()
