import re
from fractions import Fraction
from pathlib import Path

import pytest

from acqsynth.domains.math import (
    MathDifficulty,
    MathProblem,
    extract_final_answer,
    format_number,
    format_sample,
    format_score,
    generate_arithmetic_drills,
    generate_word_problems,
    gsm8k_solution,
    load_gsm8k,
    numbers_equal,
    parse_number,
    parse_sample,
    split_gsm8k_answer,
    student_completion,
    student_prompt,
)
from acqsynth.verify.math import check_annotations, evaluate_expression

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
GSM8K = SHARED / "gsm8k"

DIFFICULTIES = [
    MathDifficulty(),
    MathDifficulty(min_steps=1, max_steps=1, min_value=1, max_value=10, operations=("+",)),
    MathDifficulty(min_steps=2, max_steps=4, min_value=2, max_value=12, operations=("+", "-", "*", "/")),
    MathDifficulty(min_steps=3, max_steps=3, min_value=5, max_value=50, operations=("*", "/")),
    MathDifficulty(min_steps=1, max_steps=2, min_value=1, max_value=20, operations=("/",)),
    MathDifficulty(min_steps=6, max_steps=8, min_value=1, max_value=9, operations=("+", "-", "*", "/")),
]
GENERATORS = [generate_word_problems, generate_arithmetic_drills]


# --- procedural generators ------------------------------------------------------------------------------------


@pytest.mark.parametrize("generate", GENERATORS)
def test_generators_are_deterministic_by_seed(generate):
    difficulty = DIFFICULTIES[2]
    first = generate(30, difficulty, seed=7)
    assert first == generate(30, difficulty, seed=7)
    assert first != generate(30, difficulty, seed=8)
    # Asking for more problems leaves the first ones unchanged.
    assert generate(50, difficulty, seed=7)[:30] == first


def test_ids_and_skills():
    words = generate_word_problems(3, MathDifficulty(), seed=0, id_prefix="seed")
    drills = generate_arithmetic_drills(3, MathDifficulty(), seed=0)
    assert [p.id for p in words] == ["seed-000000", "seed-000001", "seed-000002"]
    assert [p.id for p in drills] == ["arith-000000", "arith-000001", "arith-000002"]
    assert {p.skill for p in words} == {"word_problem"}
    assert {p.skill for p in drills} == {"arithmetic"}
    assert generate_word_problems(0, MathDifficulty(), seed=0) == []


@pytest.mark.parametrize("generate", GENERATORS)
@pytest.mark.parametrize("difficulty", DIFFICULTIES, ids=str)
def test_generated_problems_respect_the_knobs(generate, difficulty):
    for problem in generate(60, difficulty, seed=3):
        checks = check_annotations(problem.reasoning)
        assert difficulty.min_steps <= len(checks) <= difficulty.max_steps, problem
        for check in checks:
            op = re.fullmatch(r"\d+([-+*/])\d+", check.expression)[1]
            assert op in difficulty.operations, problem
            # Exact, whole, positive: no negative results and division without remainder.
            assert check.ok and not check.rounded, problem
            assert check.computed.denominator == 1 and check.computed >= 1, problem
        operands = [int(n) for n in re.findall(r"\d+", problem.question)]
        assert all(difficulty.min_value <= n <= difficulty.max_value for n in operands), problem
        assert Fraction(problem.answer) == checks[-1].computed


@pytest.mark.parametrize("generate", GENERATORS)
def test_each_reasoning_line_has_one_annotation_matching_its_text(generate):
    for problem in generate(100, DIFFICULTIES[2], seed=5):
        for line in problem.reasoning.split("\n"):
            annotations = re.findall(r"<<([^<>]*)=([^<>]*)>>", line)
            assert len(annotations) == 1, line
            expression, value = annotations[0]
            written = re.search(r"(\d+) ([-+*/]) (\d+) = <<", line)
            assert "".join(written.groups()) == expression, line
            assert line.split(">>", 1)[1].startswith(value), line


def test_all_operations_and_many_templates_are_used():
    problems = generate_word_problems(400, DIFFICULTIES[2], seed=11)
    ops = {re.fullmatch(r"\d+([-+*/])\d+", c.expression)[1] for p in problems for c in check_annotations(p.reasoning)}
    assert ops == {"+", "-", "*", "/"}
    text = " ".join(p.question for p in problems)
    phrases = ["buys", "finds", "more", "gives away", "of the", "times as many", "trades each", "equally among",
               "equal piles", "bags of", "How many"]
    assert [phrase for phrase in phrases if phrase not in text] == []


def test_word_problems_read_as_gsm8k_questions_and_are_not_near_duplicates():
    problems = generate_word_problems(500, MathDifficulty(), seed=1)
    for problem in problems:
        assert re.search(r"How many [a-z]+ [^?.]*\?$", problem.question), problem.question
        assert "<<" not in problem.question and "####" not in problem.question
    assert len({p.question for p in problems}) >= 0.95 * len(problems)
    vocabulary = {w for p in problems for w in re.findall(r"[A-Za-z]+", p.question + " " + p.reasoning)}
    assert len(vocabulary) < 150  # small enough for a tiny model


def test_arithmetic_drill_expressions_equal_their_answers():
    for problem in generate_arithmetic_drills(200, DIFFICULTIES[2], seed=2):
        expression = re.fullmatch(r"Compute (.+)\.", problem.question)[1]
        assert evaluate_expression(expression) == int(problem.answer), problem


def test_arithmetic_drill_example_shape():
    problem = generate_arithmetic_drills(1, MathDifficulty(min_steps=2, max_steps=2), seed=0)[0]
    first, second = problem.reasoning.split("\n")
    assert re.fullmatch(r"\d+ [-+] \d+ = <<\d+[-+]\d+=\d+>>\d+", first)
    assert second.startswith(first.rsplit(">>", 1)[1] + " ")


@pytest.mark.parametrize(
    ("knobs", "field"),
    [
        ({"min_steps": 0}, "min_steps"),
        ({"min_steps": 3, "max_steps": 2}, "max_steps"),
        ({"min_value": 0}, "min_value"),
        ({"min_value": 10, "max_value": 5}, "max_value"),
        ({"operations": ()}, "operations"),
        ({"operations": ("+", "^")}, "operations"),
        ({"operations": ["+"]}, "operations"),
        ({"max_value": 1, "operations": ("*",)}, "max_value"),
    ],
)
def test_difficulty_validation_names_the_field(knobs, field):
    with pytest.raises(ValueError, match=f"MathDifficulty.{field} must"):
        MathDifficulty(**knobs)


def test_impossible_knobs_raise_instead_of_shortening_problems():
    difficulty = MathDifficulty(min_steps=5, max_steps=5, min_value=1, max_value=3, operations=("-",))
    with pytest.raises(ValueError, match="cannot build a 5-step chain"):
        generate_word_problems(1, difficulty, seed=0)


# --- numbers ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("42", Fraction(42)),
        (" -7 ", Fraction(-7)),
        ("3.50", Fraction(7, 2)),
        (".5", Fraction(1, 2)),
        ("5.", Fraction(5)),
        ("1,000", Fraction(1000)),
        ("$1,234.5", Fraction(24690, 20)),
        ("-$5", Fraction(-5)),
        ("3/4", Fraction(3, 4)),
        ("-3/4", Fraction(-3, 4)),
        ("", None),
        ("abc", None),
        ("1,00", None),
        ("3/0", None),
        ("1e5", None),
        ("4 apples", None),
        ("1_000", None),
    ],
)
def test_parse_number(text, value):
    assert parse_number(text) == value


def test_numbers_equal():
    assert numbers_equal("8", "8.0") and numbers_equal("8.00", "8")
    assert numbers_equal("1,000", "1000") and numbers_equal("$5", "5") and numbers_equal("0.75", "3/4")
    assert not numbers_equal("8", "8.01")
    assert not numbers_equal("8", "eight") and not numbers_equal("x", "x")


@pytest.mark.parametrize(
    ("value", "text"),
    [(Fraction(21), "21"), (Fraction(-1, 4), "-0.25"), (Fraction(1, 3), "1/3"), (Fraction(201, 10), "20.1")],
)
def test_format_number(value, text):
    assert format_number(value) == text
    assert parse_number(text) == value


# --- GSM8K solutions and the loader ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("final", "answer"),
    [("72", "72"), ("1,000", "1000"), ("$5", "5"), ("7.", "7"), ("-3", "-3"), ("0.5", "0.5")],
)
def test_split_gsm8k_answer_normalises_the_final_number(final, answer):
    reasoning, extracted = split_gsm8k_answer(f"She has 8 - 2 = <<8-2=6>>6.\nSo {final}.\n#### {final}")
    assert reasoning == f"She has 8 - 2 = <<8-2=6>>6.\nSo {final}."
    assert extracted == answer and parse_number(extracted) is not None


@pytest.mark.parametrize(
    ("solution", "message"),
    [
        ("2 + 2 = 4", "no '#### <answer>' line"),
        ("#### 4\nmore text", "text after the '#### <answer>' line"),
        ("2 + 2 = 4\n#### four", "'four' after '####' is not a number"),
        ("2 + 2 = 4\n####", "'' after '####' is not a number"),
    ],
)
def test_split_gsm8k_answer_errors(solution, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        split_gsm8k_answer(solution)


def test_gsm8k_solution_round_trips():
    problem = generate_word_problems(1, MathDifficulty(), seed=0)[0]
    assert gsm8k_solution(problem).endswith(f"\n#### {problem.answer}")
    assert split_gsm8k_answer(gsm8k_solution(problem)) == (problem.reasoning, problem.answer)


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


GOOD_LINE = '{"question": "Tom has 2 apples and buys 3. How many?", "answer": "2 + 3 = <<2+3=5>>5\\n#### 5"}'


def test_load_gsm8k_from_file_and_directory(tmp_path):
    _write_lines(tmp_path / "test.jsonl", [GOOD_LINE, "", GOOD_LINE.replace("5", "5")])
    from_dir = load_gsm8k(str(tmp_path), split="test")
    from_file = load_gsm8k(str(tmp_path / "test.jsonl"), split="test")
    assert from_dir == from_file
    assert [p.id for p in from_dir] == ["gsm8k-test-0", "gsm8k-test-2"]
    assert from_dir[0] == MathProblem(
        id="gsm8k-test-0",
        skill="word_problem",
        question="Tom has 2 apples and buys 3. How many?",
        reasoning="2 + 3 = <<2+3=5>>5",
        answer="5",
    )
    assert len(load_gsm8k(str(tmp_path), split="test", limit=1)) == 1


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"question": "q", "answer": "1 + 1 = 2\\n#### 2"', "bad.jsonl:2: invalid JSON"),
        ('["q", "a"]', "bad.jsonl:2: expected a JSON object"),
        ('{"question": "q"}', "bad.jsonl:2: missing field 'answer'"),
        ('{"answer": "#### 2"}', "bad.jsonl:2: missing field 'question'"),
        ('{"question": "q", "answer": 2}', "bad.jsonl:2: field 'answer' must be a string"),
        ('{"question": "q", "answer": "1 + 1 = 2"}', "bad.jsonl:2: no '#### <answer>' line"),
    ],
)
def test_load_gsm8k_bad_lines_name_file_and_line(tmp_path, line, message):
    path = _write_lines(tmp_path / "bad.jsonl", [GOOD_LINE, line])
    with pytest.raises(ValueError, match=re.escape(message)):
        load_gsm8k(str(path))


def test_load_gsm8k_non_utf8_names_the_file(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(GOOD_LINE.encode() + b"\n" + '{"question": "caf\xe9"}'.encode("latin-1") + b"\n")
    with pytest.raises(ValueError, match=re.escape(f"{path}:2: not valid UTF-8")):
        load_gsm8k(str(path))


def test_load_gsm8k_missing_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.jsonl"):
        load_gsm8k(str(tmp_path / "nowhere.jsonl"))
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "validation.jsonl"))):
        load_gsm8k(str(tmp_path), split="validation")
    with pytest.raises(ValueError, match="limit"):
        load_gsm8k(str(tmp_path), limit=-1)


@pytest.mark.skipif(not GSM8K.is_dir(), reason="../shared/datasets/gsm8k is absent")
@pytest.mark.parametrize(("split", "records"), [("train", 7473), ("test", 1319)])
def test_real_gsm8k_loads_with_numeric_answers(split, records):
    from_file = load_gsm8k(str(GSM8K / f"{split}.jsonl"), split=split)
    from_dir = load_gsm8k(str(GSM8K), split=split)
    assert len(from_file) == records
    assert from_file == from_dir
    assert len({p.id for p in from_file}) == records
    not_numeric = [(p.id, p.answer) for p in from_file if parse_number(p.answer) is None]
    assert not not_numeric, not_numeric[:5]
    assert all(p.question and p.reasoning for p in from_file)
    # Commas were normalised away ("1,200" -> "1200").
    assert not [p.answer for p in from_file if "," in p.answer or "$" in p.answer]


# --- the method's sample format --------------------------------------------------------------------------------


def test_format_and_parse_round_trip():
    text = format_sample("How many?", "2 + 3 = <<2+3=5>>5", "5")
    assert text == "<question>How many?</question><reasoning>2 + 3 = <<2+3=5>>5</reasoning><answer>5</answer>"
    parsed = parse_sample(text)
    assert parsed.ok and parsed.error == ""
    assert (parsed.question, parsed.reasoning, parsed.answer) == ("How many?", "2 + 3 = <<2+3=5>>5", "5")
    spaced = parse_sample("\n <question> Q </question>\n<reasoning>\nR\n</reasoning> <answer> 5 </answer>\n\n")
    assert (spaced.ok, spaced.question, spaced.reasoning, spaced.answer) == (True, "Q", "R", "5")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("<question>Q</question><reasoning>R<answer>5</answer>", "missing </reasoning>"),
        ("no tags at all", "missing <question>"),
        ("<question></question><reasoning>R</reasoning><answer>5</answer>", "empty question"),
        ("<question>Q</question><reasoning> </reasoning><answer>5</answer>", "empty reasoning"),
        ("<question>Q</question><reasoning>R</reasoning><answer></answer>", "empty answer"),
        ("<reasoning>R</reasoning><question>Q</question><answer>5</answer>", "tags out of order"),
        ("<question>Q</question><reasoning>R</reasoning><answer>5</answer> and more", "text after </answer>"),
        ("Sure! <question>Q</question><reasoning>R</reasoning><answer>5</answer>", "text before <question>"),
        ("<question>Q</question>x<reasoning>R</reasoning><answer>5</answer>",
         "text between </question> and <reasoning>"),
        ("<question>Q</question><reasoning>R</reasoning>x<answer>5</answer>",
         "text between </reasoning> and <answer>"),
        ("<question>Q</question><question>Q</question><reasoning>R</reasoning><answer>5</answer>",
         "more than one <question>"),
    ],
)
def test_parse_errors_are_named(text, error):
    parsed = parse_sample(text)
    assert not parsed.ok and parsed.error == error
    assert parsed.question is parsed.reasoning is parsed.answer is None


def test_format_score_is_graded_and_full_only_when_parseable():
    full = format_sample("Q", "2 + 3 = <<2+3=5>>5", "5")
    assert format_score(full) == 1.0
    # Each prefix of a sample shows one more tag: the score must not fall and must take many values.
    prefixes = [full[:i] for i in range(len(full))]
    scores = [format_score(p) for p in prefixes]
    assert scores == sorted(scores) and all(0.0 <= s < 1.0 for s in scores)
    assert len(set(scores)) >= 6
    assert format_score("") == 0.0
    for broken in [full + " trailing", full.replace("Q", ""), full.replace("<question>", "")]:
        assert 0.0 < format_score(broken) < 1.0
    assert format_score(full + " trailing") > format_score(full.replace("</answer>", ""))


# --- student format --------------------------------------------------------------------------------------------


def test_student_prompt_and_completion():
    assert student_prompt("How many?") == "Question: How many?\nAnswer:"
    completion = student_completion("2 + 3 = <<2+3=5>>5", "5")
    assert completion == " 2 + 3 = <<2+3=5>>5\n#### 5"
    assert extract_final_answer(student_prompt("How many?") + completion) == "5"


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        (" 6 - 2 = 4\n#### 4", "4"),
        ("#### 1,000", "1000"),
        ("#### $12.50", "12.50"),
        ("#### -3.", "-3"),
        ("#### 7 apples\n#### 9", "7"),
        ("#### 5\nQuestion: next", "5"),
        ("no marker 5", None),
        ("#### ", None),
        ("####\n5", None),
        ("#### five", None),
    ],
)
def test_extract_final_answer(text, answer):
    assert extract_final_answer(text) == answer
