"""No copies (a generated question that is a seed/pool/pretrain/eval question again) and a generator whose prompt
steers (pre-training pairs of the same difficulty)."""

import re
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from acqsynth.config import CopiesConfig
from acqsynth.domains.math.problems import MathDifficulty, generate_word_problems
from acqsynth.stages import _share_of, difficulty_of, generator_pairs
from acqsynth.verify.copies import Reference, copy_reasons, normalise_question

SEED = Reference("seed", "math-000001", "Tom has 5 apples. Tom gives away 3 apples. How many apples does Tom have now?")
POOL = Reference("pool", "math-000002", "Ann buys 4 pens. Ann buys 7 more pens. How many pens does Ann have now?")


def sentence_embed(texts: list[str]) -> np.ndarray:
    from acqsynth.acquisition.embeddings import sentence_embedder

    return sentence_embedder().embed(texts)


def test_normalised_text_ignores_case_punctuation_and_spacing():
    assert normalise_question("  Tom has 5 apples!  How many?") == normalise_question("tom HAS 5 apples how many")


@pytest.mark.parametrize(
    ("question", "reason"),
    [
        (SEED.question, "copy: the same text as seed question math-000001"),
        ("tom has 5 apples; tom gives away 3 apples -- how many apples does tom have now", "copy: the same text as "
         "seed question math-000001"),
        (POOL.question.upper(), "copy: the same text as pool question math-000002"),
        # Different numbers make a different problem, however alike the text.
        ("Tom has 6 apples. Tom gives away 3 apples. How many apples does Tom have now?", ""),
        ("Sam has 9 cards. Sam finds 2 cards. How many cards does Sam have now?", ""),
        (None, ""),  # an unparsed sample is rejected for its format, never as a copy
    ],
)
def test_copies_by_text(question, reason):
    assert copy_reasons([question], [SEED, POOL], None, None) == [reason]


@pytest.mark.parametrize(
    "near_copy",
    [
        "Tom has 5 apples. Tom gives away 3 apples. How many apples does Tom have left?",
        "Tom has 5 apples. He gives away 3 apples. How many apples does Tom have now?",
        "Tom had 5 apples. Tom gave away 3 apples. How many apples does Tom have now?",
    ],
)
def test_a_reworded_question_with_the_same_numbers_is_a_near_copy_at_the_default_threshold(near_copy):
    threshold = CopiesConfig().cosine_threshold
    other_numbers = near_copy.replace("5", "8")
    same_numbers_other_story = "A train travels 5 miles and then 3 more miles. What is the total distance?"
    reasons = copy_reasons([near_copy, other_numbers, same_numbers_other_story], [SEED, POOL], sentence_embed,
                           threshold)
    assert re.fullmatch(r"copy: near-identical \(cosine 0\.9\d\d, same numbers\) to seed question math-000001",
                        reasons[0])
    assert reasons[1:] == ["", ""]
    # Without an embedder only the normalised text is compared.
    assert copy_reasons([near_copy], [SEED], None, None) == [""]


def test_a_renamed_question_needs_a_lower_threshold():
    # MiniLM puts a renamed person at cosine 0.89: the default (0.97) keeps it, a threshold of 0.85 rejects it.
    renamed = "Ben has 5 apples. Ben gives away 3 apples. How many apples does Ben have now?"
    assert copy_reasons([renamed], [SEED], sentence_embed, CopiesConfig().cosine_threshold) == [""]
    assert copy_reasons([renamed], [SEED], sentence_embed, 0.85)[0].startswith("copy: near-identical (cosine 0.8")


def test_only_questions_sharing_their_numbers_with_a_reference_are_embedded():
    embedded: list[str] = []

    def counting_embed(texts: list[str]) -> np.ndarray:
        embedded.extend(texts)
        return np.eye(len(texts), 4)

    copy_reasons(["Ben has 5 apples and gives away 3.", "Ben has 8 pears."], [SEED, POOL], counting_embed, 0.97)
    assert embedded == [SEED.question, "Ben has 5 apples and gives away 3."]


def _examples(n: int) -> pd.DataFrame:
    problems = generate_word_problems(n, MathDifficulty(min_steps=1, max_steps=3), seed=3)
    return pd.DataFrame({"domain": "math", "id": [p.id for p in problems], "question": [p.question for p in problems],
                         "reasoning": [p.reasoning for p in problems], "answer": [p.answer for p in problems],
                         "skill": [p.skill for p in problems]})


def test_generator_pairs_share_the_seed_difficulty_and_are_not_the_seed_itself():
    examples = _examples(60)
    pairs = generator_pairs(examples, seed=0)
    assert len(pairs) == len(examples)
    steps = Counter(difficulty_of("math", q, r, s) for q, r, s in
                    zip(examples["question"], examples["reasoning"], examples["skill"]))
    assert len(steps) == 3  # 1-, 2- and 3-step problems all occur
    by_question = {q: difficulty_of("math", q, r, s) for q, r, s in
                   zip(examples["question"], examples["reasoning"], examples["skill"])}
    for (prompt, target), seed_question in zip(pairs, examples["question"]):
        assert seed_question in prompt
        target_question = target.split("<question>")[1].split("</question>")[0]
        assert by_question[target_question] == by_question[seed_question]
        assert target_question != seed_question
    # The pairing is seeded: the same seed gives the same pairs, another seed other ones.
    assert generator_pairs(examples, seed=0) == pairs
    assert generator_pairs(examples, seed=1) != pairs


def test_a_share_of_the_pretrain_split_keeps_the_first_examples_of_each_domain_in_their_order():
    examples = pd.DataFrame({"domain": ["math", "mcq", "mcq", "code", "mcq", "math", "mcq"],
                             "id": ["m0", "q0", "q1", "c0", "q2", "m1", "q3"]})
    assert list(_share_of(examples, {"mcq": 0.5})["id"]) == ["m0", "q0", "q1", "c0", "m1"]
    assert list(_share_of(examples, {"mcq": 0.1, "math": 0.5})["id"]) == ["m0", "q0", "c0"]  # at least one
    assert _share_of(examples, {}).equals(examples)


def test_a_multiple_choice_question_with_its_options_reordered_is_a_copy():
    seed = Reference("seed", "mcq-000001", "Which drug is a statin?\nA. Taroxil\nB. Dunostat\nC. Feroxil\nD. Rupivan")
    reordered = "Which drug is a statin?\nA. Dunostat\nB. Rupivan\nC. Taroxil\nD. Feroxil"
    other_option = "Which drug is a statin?\nA. Dunostat\nB. Rupivan\nC. Taroxil\nD. Moroxil"
    assert copy_reasons([reordered, other_option], [seed], None, None) == [
        "copy: the same text as seed question mcq-000001", ""]


def test_the_generator_is_taught_multiple_choice_questions_with_the_key_first():
    from acqsynth.domains import mcq

    examples = pd.DataFrame([{"domain": "mcq", **vars(example)} for example in mcq.procedural_examples(40, seed=2)])
    assert set(examples["answer"].str[0]) == set("ABCD")  # the data's keys sit anywhere
    for prompt, target in generator_pairs(examples, seed=0):
        for text in (prompt.split("\nNew:\n")[0], target):
            question = text.split("<question>")[1].split("</question>")[0]
            answer = text.split("<answer>")[1].split("</answer>")[0]
            assert answer == f"A: {mcq.parse_options(question)[1][0][1]}"
