"""What the generator is shown and taught of a sample, and how its text comes back as a sample of the domain."""

from collections import Counter

import pytest

from acqsynth.domains import domain_module, generator_prompt, mcq, parse_generated
from acqsynth.domains.sample import format_sample
from acqsynth.verify.mcq import verify_mcq_sample

EXAMPLES = mcq.procedural_examples(400, seed=5)


def test_the_generator_sees_the_key_first_and_nothing_else_changes():
    for example in EXAMPLES:
        question, reasoning, answer = mcq.generator_view(example.question, example.reasoning, example.answer)
        stem, options = mcq.parse_options(question)
        original_stem, original_options = mcq.parse_options(example.question)
        key_text = example.answer.split(": ", 1)[1]
        assert answer == f"A: {key_text}" and options[0] == ("A", key_text)
        assert stem == original_stem and reasoning == example.reasoning
        assert [text for _, text in options[1:]] == [text for _, text in original_options if text != key_text]


def test_a_generated_question_gets_its_key_at_a_place_of_its_own():
    places = Counter()
    for example in EXAMPLES:
        written = mcq.generator_view(example.question, example.reasoning, example.answer)
        question, reasoning, answer = mcq.from_generator(*written)
        assert mcq.from_generator(*written) == (question, reasoning, answer)  # the same text, the same order
        assert sorted(text for _, text in mcq.parse_options(question)[1]) == sorted(
            text for _, text in mcq.parse_options(example.question)[1])
        assert mcq.answers_match(answer, example.answer) and answer == mcq.format_answer(
            mcq.chosen_option(answer, question), example.answer.split(": ", 1)[1])
        assert verify_mcq_sample(question, reasoning, answer).verified
        places[answer[0]] += 1
    assert set(places) == set("ABCD") and min(places.values()) > len(EXAMPLES) / 4 * 0.7


@pytest.mark.parametrize(("question", "answer"), [
    ("Which drug is a statin?\nA. Taroxil\nB. Dunostat\nC. Feroxil\nD. Rupivan", "B: Fidaromyx"),  # names no option
    ("Which drug is a statin?\nA. Taroxil\nC. Dunostat\nB. Feroxil\nD. Rupivan", "C: Dunostat"),  # letters disordered
    ("Which drug is a statin?", "A: Dunostat"),  # no options
])
def test_a_sample_verification_must_reject_is_left_as_written(question, answer):
    assert mcq.generator_view(question, "r", answer) == (question, "r", answer)
    assert mcq.from_generator(question, "r", answer) == (question, "r", answer)


def test_parse_generated_puts_a_generated_sample_in_its_domain_form():
    text = format_sample("Which drug is a statin?\nA. Dunostat\nB. Taroxil\nC. Feroxil\nD. Rupivan",
                         "The -ostat stem marks statins, so Dunostat is a statin.", "A: Dunostat")
    parsed = parse_generated("mcq", text)
    assert parsed.ok and (parsed.question, parsed.reasoning, parsed.answer) == mcq.from_generator(
        "Which drug is a statin?\nA. Dunostat\nB. Taroxil\nC. Feroxil\nD. Rupivan",
        "The -ostat stem marks statins, so Dunostat is a statin.", "A: Dunostat")
    assert not parse_generated("mcq", "<question>q</question>").ok
    # Math and code samples come back as written.
    for domain in ("math", "code"):
        written = format_sample("q\nA. x\nB. y", "r", "A: x")
        assert parse_generated(domain, written).question == "q\nA. x\nB. y"


def test_the_generator_prompt_shows_the_domain_instruction_and_its_view_of_the_seed():
    example = next(e for e in EXAMPLES if not e.answer.startswith("A"))
    prompt = generator_prompt("mcq", example.question, example.reasoning, example.answer)
    assert prompt == (f"{domain_module('mcq').GENERATOR_INSTRUCTION}\n"
                      f"{format_sample(*mcq.generator_view(example.question, example.reasoning, example.answer))}"
                      "\nNew:\n")
    assert example.question not in prompt
