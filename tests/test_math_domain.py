import json
import logging
import random
import re
import time
from fractions import Fraction
from pathlib import Path

import pytest

from acqsynth.domains.math import NAME
from acqsynth.domains.math.answers import answers_match, extract_answer, format_number, last_boxed, parse_number
from acqsynth.domains.math.problems import (
    MathDifficulty,
    generate_arithmetic_drills,
    generate_word_problems,
    procedural_examples,
)
from acqsynth.domains.math.records import (
    LoadedExamples,
    SkippedRow,
    gsm8k_solution,
    load_examples,
    load_gsm8k,
    read_examples,
    split_gsm8k_answer,
)
from acqsynth.domains.sample import (
    Example,
    format_sample,
    format_score,
    parse_sample,
    student_completion,
    student_prompt,
)
from acqsynth.verify.math import check_annotations, evaluate_expression
from tests.conftest import SHARED_DATASETS

GSM8K = SHARED_DATASETS / "gsm8k"

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


@pytest.mark.parametrize(
    ("value", "text"),
    [(Fraction(21), "21"), (Fraction(-1, 4), "-0.25"), (Fraction(1, 3), "1/3"), (Fraction(201, 10), "20.1")],
)
def test_format_number(value, text):
    assert format_number(value) == text
    assert parse_number(text) == value


# --- answers compared by value ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("8", "8.0"),
        ("8.00", "8"),
        ("1,000", "1000"),
        ("$5", "5"),
        ("-$5", "-5"),
        ("\\$5", "5"),
        ("0.75", "3/4"),
        ("25%", "25"),
        ("25\\%", "25"),
        ("\u22123", "-3"),
        ("0.5", "\\frac{1}{2}"),
        ("0.5", "\\dfrac{1}{2}"),
        ("\\tfrac12", "1/2"),
        ("-\\frac{3}{4}", "-0.75"),
        ("\\frac{-3}{4}", "-0.75"),
        ("\\sqrt{8}", "2\\sqrt{2}"),
        ("\\sqrt{8}", "2*sqrt(2)"),
        ("\\sqrt[3]{27}", "3"),
        ("\\sqrt[3]{-8}", "-2"),
        ("\\sqrt{2}+\\sqrt{3}", "\\sqrt{5+2\\sqrt{6}}"),
        ("\\frac{\\sqrt{3}}{2}", "\\frac{1}{2}\\sqrt{3}"),
        ("2\\pi", "\\pi + \\pi"),
        ("\\dfrac{\\pi}{3}", "\\frac13\\pi"),
        ("\\frac{2\\pi}{3}", "2pi/3"),
        ("\\left(\\frac{1}{2}\\right)^{2}", "0.25"),
        ("2^{10}", "1024"),
        ("2^{-1}", "0.5"),
        ("10,\\!000", "10000"),
        ("10{,}000", "10000"),
        ("1\\,000\\,000", "1000000"),
        ("2\\,x", "2 x"),
        ("3 \\cdot 4", "12"),
        ("12 \\div 4", "3"),
        ("3 \\times 10^{2}", "300"),
        ("x^{2}", "x*x"),
        ("x^{2}-1", "(x-1)(x+1)"),
        ("\\frac{1}{x}", "x^{-1}"),
        ("2xy", "2yx"),
        ("x = 5", "5"),
        ("5\\text{ cm}", "5"),
        ("5 \\mbox{ inches}", "5"),
        ("90^\\circ", "90"),
        ("90^{\\circ}", "90"),
        ("$\\frac{1}{2}$", "0.5"),
        ("\\boxed{\\frac{3}{4}}", "0.75"),
        ("\\mathbf{7}", "7"),
        ("5.", "5"),
    ],
)
def test_answers_match_by_value(a, b):
    assert answers_match(a, b) and answers_match(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("3", "4"),
        ("8", "8.01"),
        ("0.333", "1/3"),
        ("0." + "3" * 45, "1/3"),  # exact rationals are compared exactly, however close
        ("2^{100}", "2^{100}+1"),
        ("2\\pi", "6.283185307179586"),  # an irrational value is not its decimal approximation
        ("\\sqrt{2}", "1.4142135623730951"),
        ("x", "5"),
        ("x^{2}", "2x"),
        ("-2", "2"),
        ("25%", "0.25"),  # "%" is dropped, not divided by 100
        ("2\\frac{1}{2}", "2.5"),  # LaTeX math reads a product, not a mixed number
    ],
)
def test_answers_differing_in_value_do_not_match(a, b):
    assert not answers_match(a, b) and not answers_match(b, a)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "eight",
        "Monday",
        "\\text{(A)}",
        "(1, 2)",
        "[0, 1)",
        "\\{1, 2\\}",
        "1, 2",
        "x = 5 = y",
        "x \\le 5",
        "1/0",
        "0/0",
        "\\frac{1}{0}",
        "0^{-1}",
        "\\sqrt[0]{2}",
        "x_1",
        "\\sin x",
        "\\infty",
        "5!",
        "1.5e3",
        "\\frac{1}{2",
        "(1+2",
        "1 +",
        "2 3",
        "\\boxed{5",
        "2^{10^{10}}",
        "10^{1001}",
        "1" * 201,
        "__import__('os').system('true')",
    ],
)
def test_non_values_never_match_not_even_themselves(text):
    assert not answers_match(text, text)
    assert not answers_match(text, "5") and not answers_match("5", text)


def test_answers_match_never_raises_and_is_symmetric_on_random_text():
    pieces = ["1", "0", "10", "999", "3.5", ",", "x", "y", "pi", "\\pi", "\\frac", "\\sqrt", "\\sqrt[", "{", "}",
              "(", ")", "[", "]", "^", "^{999}", "+", "-", "*", "/", "\\cdot", "\\left(", "\\right)", "\\boxed{",
              "\\text{cm}", "=", "%", "$", "!", "\\\\", "\\{", "~", "\\,", "12345678901234567890"]
    rng = random.Random(0)
    matched_themselves = 0
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 30)))
        other = rng.choice(["1", "x", "\\frac{1}{2}"])
        matched_themselves += answers_match(text, text)
        assert answers_match(text, other) == answers_match(other, text), (text, other)
        assert extract_answer("#### " + text) is None or isinstance(extract_answer("#### " + text), str)
    # Most random strings are not values; the few that are (say "10" or "\\pi") match themselves.
    assert 0 < matched_themselves < 300


@pytest.mark.parametrize(
    "text",
    [
        "\\sqrt[7]{(x^{999}+y)^{999}}",  # sympy's automatic simplification runs for minutes on this
        "x^{x^{x^{x^{x^{x^{x^{x^{x^{x}}}}}}}}}",
        "(12345678901234567890^{999})^{999}",
        "2^" * 99 + "2",
        "(9^{999})" * 12,
        "(" * 99 + "1" + ")" * 99,
        "-" * 199 + "1",
    ],
)
def test_adversarial_answers_are_bounded(text):
    started = time.perf_counter()
    answers_match(text, text)
    answers_match(text, "1")
    assert time.perf_counter() - started < 1


# --- boxed answers ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "content"),
    [
        ("so the answer is $\\boxed{42}$.", "42"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt{3}}{2}"),  # nested braces
        ("\\boxed{{{1}}}", "{{1}}"),
        ("first \\boxed{1}, then \\boxed{2}", "2"),  # the last one
        ("\\boxed{\\boxed{3}}", "3"),
        ("\\boxed {  7 }", "7"),
        ("\\fbox{8}", "8"),
        ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),  # escaped braces are not groups
        ("\\boxed{1} and \\boxed{2", None),  # the last is unclosed: a truncated answer is no answer
        ("\\boxed{}", None),
        ("\\boxed 5", None),
        ("no box", None),
    ],
)
def test_last_boxed(text, content):
    assert last_boxed(text) == content


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
    assert from_dir[0] == Example(
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


@pytest.mark.skipif(not GSM8K.is_dir(), reason="../shared/datasets/gsm8k is absent")
@pytest.mark.parametrize(("split", "records"), [("train", 7473), ("test", 1319)])
def test_real_gsm8k_every_final_answer_is_extracted(split, records):
    rows = [json.loads(line) for line in (GSM8K / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]
    examples = load_examples(str(GSM8K), split=split)
    assert len(rows) == len(examples) == records
    # From the raw solution (its `#### 72` line) and from the student's completion of the loaded example.
    missed = [
        (example.id, row["answer"].rsplit("\n", 1)[-1])
        for row, example in zip(rows, examples, strict=True)
        if not answers_match(extract_answer(row["answer"]) or "", example.answer)
        or extract_answer(student_completion(example.reasoning, example.answer)) != example.answer
    ]
    assert missed == [], f"{len(missed)} final answers not extracted: {missed[:20]}"


# --- NuminaMath-style records and format detection --------------------------------------------------------------


def _numina(problem: object, solution: object, **extra: object) -> str:
    return json.dumps({"problem": problem, "solution": solution, **extra})


NUMINA_LINES = [
    _numina("Compute $1/2 + 1/4$.", "We add: $\\frac{1}{2}+\\frac{1}{4}=\\boxed{\\frac{3}{4}}$.",
            source="synthetic_math", messages=[{"role": "user", "content": "Compute"}]),
    _numina("Simplify $\\sqrt{8}$.", "First \\boxed{x}, no: $\\sqrt{8} = \\boxed{2\\sqrt{2}}$"),
    _numina("Which is larger?", "It is the first one, so no box here."),
    "",
    _numina("Pick one.", "The answer is $\\boxed{\\text{(B)}}$."),
    _numina("Find the pair.", "So $\\boxed{(1, 2)}$."),
    _numina("   ", "\\boxed{3}"),
    _numina("Truncated.", "Thus \\boxed{\\frac{1}{2}"),
    _numina("How many?", "  There are $\\boxed{ 1,000 }$ of them.\n", source=""),
]


def test_read_numina_records_keeps_good_rows_and_lists_the_skipped(tmp_path):
    path = _write_lines(tmp_path / "train.jsonl", NUMINA_LINES)
    loaded = read_examples(str(path))
    assert loaded.examples == [
        Example(id="numina-train-0", skill="synthetic_math", question="Compute $1/2 + 1/4$.",
                reasoning="We add: $\\frac{1}{2}+\\frac{1}{4}=\\boxed{\\frac{3}{4}}$.", answer="\\frac{3}{4}"),
        Example(id="numina-train-1", skill="numinamath", question="Simplify $\\sqrt{8}$.",
                reasoning="First \\boxed{x}, no: $\\sqrt{8} = \\boxed{2\\sqrt{2}}$", answer="2\\sqrt{2}"),
        Example(id="numina-train-8", skill="numinamath", question="How many?",
                reasoning="There are $\\boxed{ 1,000 }$ of them.", answer="1,000"),
    ]
    assert loaded.skipped == [
        SkippedRow(f"{path}:3", "no complete \\boxed{...} answer in the solution"),
        SkippedRow(f"{path}:5", "boxed answer '\\\\text{(B)}' is not a single value"),
        SkippedRow(f"{path}:6", "boxed answer '(1, 2)' is not a single value"),
        SkippedRow(f"{path}:7", "empty problem"),
        SkippedRow(f"{path}:8", "no complete \\boxed{...} answer in the solution"),
    ]
    # The student learns to write the solution and then the boxed answer after `####`; it is graded by value.
    for example in loaded.examples:
        completion = student_completion(example.reasoning, example.answer)
        assert answers_match(extract_answer(completion), example.answer)
    assert answers_match(loaded.examples[0].answer, "0.75") and answers_match(loaded.examples[1].answer, "\\sqrt{8}")


def test_load_examples_logs_the_skipped_count_and_honours_limit(tmp_path, caplog):
    _write_lines(tmp_path / "test.jsonl", NUMINA_LINES)
    with caplog.at_level(logging.WARNING, logger="acqsynth.domains.math"):
        examples = load_examples(str(tmp_path), split="test")
    assert [e.id for e in examples] == ["numina-test-0", "numina-test-1", "numina-test-8"]
    assert "skipped 5 rows" in caplog.text and "test.jsonl:3" in caplog.text
    assert [e.id for e in load_examples(str(tmp_path), split="test", limit=2)] == ["numina-test-0", "numina-test-1"]
    assert read_examples(str(tmp_path), split="test", limit=0) == LoadedExamples([], [])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"problem": "q", "solution": "\\\\boxed{1}"', "bad.jsonl:2: invalid JSON"),
        ('["q", "a"]', "bad.jsonl:2: expected a JSON object with 'problem' and 'solution', got list"),
        ('{"problem": "q"}', "bad.jsonl:2: missing field 'solution'"),
        ('{"problem": "q", "solution": 1}', "bad.jsonl:2: field 'solution' must be a string, got int"),
        ('{"problem": null, "solution": "x"}', "bad.jsonl:2: field 'problem' must be a string, got NoneType"),
        (_numina("q", "\\boxed{1}", source=3), "bad.jsonl:2: field 'source' must be a string, got int"),
        ('{"question": "q", "answer": "#### 1"}', "bad.jsonl:2: missing field 'problem'"),
    ],
)
def test_malformed_numina_rows_raise_naming_file_line_and_field(tmp_path, line, message):
    path = _write_lines(tmp_path / "bad.jsonl", [NUMINA_LINES[0], line])
    with pytest.raises(ValueError, match=re.escape(message)):
        read_examples(str(path))


def test_the_format_is_told_from_the_first_record(tmp_path):
    gsm8k = _write_lines(tmp_path / "test.jsonl", [GOOD_LINE, "", GOOD_LINE])
    assert load_examples(str(tmp_path), split="test") == load_gsm8k(str(tmp_path), split="test")
    assert read_examples(str(gsm8k)).skipped == []
    unknown = _write_lines(tmp_path / "other.jsonl", ['{"prompt": "q", "completion": "a"}'])
    with pytest.raises(ValueError, match=re.escape(f"{unknown}:1: cannot tell the record format from ['completion',")):
        load_examples(str(unknown))
    not_object = _write_lines(tmp_path / "list.jsonl", ["[1, 2]"])
    with pytest.raises(ValueError, match=re.escape(f"{not_object}:1: cannot tell the record format from list")):
        load_examples(str(not_object))
    # A GSM8K file is GSM8K throughout: a NuminaMath row in it is an error, not a second format.
    mixed = _write_lines(tmp_path / "mixed.jsonl", [GOOD_LINE, NUMINA_LINES[0]])
    with pytest.raises(ValueError, match=re.escape(f"{mixed}:2: missing field 'question'")):
        load_examples(str(mixed))
    empty = _write_lines(tmp_path / "empty.jsonl", [""])
    assert load_examples(str(empty)) == []
    with pytest.raises(FileNotFoundError, match="math source not found"):
        load_examples(str(tmp_path / "nowhere.jsonl"))


@pytest.mark.parametrize(
    ("hub_id", "configs", "row", "example_id"),
    [
        ("openai/gsm8k", ["main", "socratic"], {"question": "q", "answer": "1 + 1 = <<1+1=2>>2\n#### 2"},
         "gsm8k-test-0"),
        ("AI-MO/NuminaMath-CoT", ["default"], {"problem": "q", "solution": "\\boxed{2}", "source": "olympiads",
                                               "messages": []}, "numina-test-0"),
    ],
)
def test_hub_ids_load_through_datasets(monkeypatch, hub_id, configs, row, example_id):
    datasets = pytest.importorskip("datasets")
    calls = []

    def load_dataset(source, config, split):
        calls.append((source, config, split))
        return [row]

    monkeypatch.setattr(datasets, "get_dataset_config_names", lambda source: configs)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    (example,) = load_examples(hub_id, split="test")
    assert example.id == example_id and answers_match(example.answer, "2")
    assert calls == [(hub_id, "main" if "main" in configs else None, "test")]


# --- the domain contract ----------------------------------------------------------------------------------------


def test_procedural_examples_are_distinct_deterministic_word_problems():
    examples = procedural_examples(300, seed=4)
    assert NAME == "math" and len(examples) == 300
    assert len({e.question for e in examples}) == 300 and len({e.id for e in examples}) == 300
    assert {e.skill for e in examples} == {"word_problem"}
    assert examples == procedural_examples(300, seed=4)
    assert procedural_examples(100, seed=4) == examples[:100]
    assert procedural_examples(300, seed=5) != examples
    assert procedural_examples(0, seed=4) == []
    narrow = MathDifficulty(min_steps=1, max_steps=1, max_value=3, operations=("+",))
    assert len({e.question for e in procedural_examples(40, seed=1, difficulty=narrow)}) == 40



def test_procedural_examples_refuse_a_difficulty_without_enough_distinct_questions(monkeypatch):
    import acqsynth.domains.math.problems as math_domain

    drawn = []

    def repetitive(n, difficulty, seed):
        drawn.append(n)
        return [Example(id=f"math-{i}", skill="word_problem", question=f"Q{i % 7}", reasoning="", answer="1")
                for i in range(n)]

    monkeypatch.setattr(math_domain, "generate_word_problems", repetitive)
    assert len(procedural_examples(7, seed=0)) == 7
    with pytest.raises(ValueError, match="only 7 distinct questions in 160 word problems"):
        procedural_examples(10, seed=0)
    assert drawn[-4:] == [20, 40, 80, 160]  # doubling up to 16 draws per example


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
    assert extract_answer(student_prompt("How many?") + completion) == "5"


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
        ("####\n5", "5"),  # the answer may start on the next line; it is what follows the marker
        ("####\nQuestion: next", None),
        ("#### five", None),
        ("#### 3/4", "3/4"),
        ("#### \\frac{3}{4}", "\\frac{3}{4}"),
        ("#### 2 \\sqrt{2}\nmore", "2 \\sqrt{2}"),
        ("#### x^2 + 1", "x^2 + 1"),
        ("#### The answer is \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}"),
        ("#### \\boxed{1} or \\boxed{\\dfrac{\\pi}{2}}", "\\dfrac{\\pi}{2}"),
        ("#### \\boxed{5", None),
        ("\\boxed{5} without a marker", None),
        ("#### 5 \\text{ cm}", "5 \\text{ cm}"),
        ("#### \u22127", "\u22127"),
    ],
)
def test_extract_answer(text, answer):
    assert extract_answer(text) == answer
