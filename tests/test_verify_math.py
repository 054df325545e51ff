import random
from fractions import Fraction

import pytest

from acqsynth.domains.math.problems import MathDifficulty, generate_arithmetic_drills, generate_word_problems
from acqsynth.domains.math.records import load_gsm8k
from acqsynth.domains.math.problems import solve_word_problem
from acqsynth.domains.sample import Verdict
from acqsynth.verify.math import (
    MathRules,
    answer_model_vote,
    check_annotations,
    evaluate_expression,
    verify_batch,
    verify_math_sample,
)
from tests.conftest import SHARED_DATASETS

GSM8K = SHARED_DATASETS / "gsm8k"

REASONING = "Tom has 5 + 3 = <<5+3=8>>8 apples.\nHe gives away 2, so he has 8 - 2 = <<8-2=6>>6 apples."


# --- the safe evaluator ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("5+3", Fraction(8)),
        ("48/2", Fraction(24)),
        ("12/60", Fraction(1, 5)),
        ("0.2*50", Fraction(10)),
        ("0.1+0.2", Fraction(3, 10)),
        ("100-50-30-15", Fraction(5)),
        ("(3+4)*2", Fraction(14)),
        ("-5+2", Fraction(-3)),
        ("7//2", Fraction(3)),
        ("7%3", Fraction(1)),
        ("2**10", Fraction(1024)),
        ("2**-1", Fraction(1, 2)),
        ("05+1", Fraction(6)),
        ("1_000+1", Fraction(1001)),  # leading-zero stripping must not turn 1_000 into 1_0
        ("1e5", Fraction(100000)),
        ("10.05*2", Fraction(201, 10)),
        (" 3 * 4 ", Fraction(12)),
    ],
)
def test_evaluate_expression(expression, value):
    assert evaluate_expression(expression) == value


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("__import__('os')", "Call is not allowed"),
        ("__import__('os').system('true')", "is not allowed"),
        ("x + 1", "name 'x' is not allowed"),
        ("os", "name 'os' is not allowed"),
        ("(1).real", "Attribute is not allowed"),
        ("'a' * 3", "only numbers are allowed"),
        ("True + 1", "only numbers are allowed"),
        ("1j * 2", "only numbers are allowed"),
        ("lambda: 1", "Lambda is not allowed"),
        ("[1, 2]", "List is not allowed"),
        ("1 < 2", "Compare is not allowed"),
        ("1 << 2", "operator LShift is not allowed"),
        ("2 ** 1000", "exponent must be a whole number of at most 64"),
        ("9 ** 64 ** 2", "exponent must be a whole number"),
        ("2 ** 0.5", "exponent must be a whole number"),
        ("1 / 0", "division by zero"),
        ("1 % (2 - 2)", "division by zero"),
        ("0 ** -1", "division by zero"),
        ("1 +", "not an arithmetic expression"),
        ("1; 2", "not an arithmetic expression"),
        ("1" * 201, "longer than 200"),
        ("1e999999999", "number too large"),  # refused before 10**999999999 is built
        ("1e101", "number too large"),
    ],
)
def test_evaluate_expression_refuses_anything_but_arithmetic(expression, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("*", r"\*")):
        evaluate_expression(expression)


# --- annotation checks -----------------------------------------------------------------------------------------


def test_check_annotations():
    checks = check_annotations(REASONING + " <<2+2=5>> <<100/3=33.33>> <<7*x=7>> <<1+1>> <<2*3=six>>")
    assert [(c.expression, c.claimed, c.ok, c.rounded) for c in checks] == [
        ("5+3", "8", True, False),
        ("8-2", "6", True, False),
        ("2+2", "5", False, False),
        ("100/3", "33.33", True, True),
        ("7*x", "7", False, False),
        ("1+1", "", False, False),
        ("2*3", "six", False, False),
    ]
    assert checks[0].computed == 8 and checks[0].error == ""
    assert checks[2].computed == 4 and checks[2].error == "computes 4, not 5"
    assert checks[3].computed == Fraction(100, 3)
    assert checks[4].computed is None and "name 'x'" in checks[4].error
    assert checks[5].error == "no '=' in annotation"
    assert checks[6].error == "claimed value 'six' is not a number"
    assert check_annotations("no annotations here") == []


@pytest.mark.parametrize(
    ("annotation", "rounded", "ok"),
    [
        ("<<100/3=33>>", True, True),
        ("<<2/3=0.67>>", True, True),
        ("<<2/3=0.66>>", False, False),  # truncation is not rounding
        ("<<7/2=3.5>>", False, True),
        ("<<1/8=0.13>>", True, True),
        ("<<10/4=3>>", True, True),  # a tie rounds either way
        ("<<10/4=4>>", False, False),
    ],
)
def test_rounding_is_accepted_and_flagged(annotation, rounded, ok):
    (check,) = check_annotations(annotation)
    assert (check.ok, check.rounded) == (ok, rounded)


def test_check_annotations_never_raises_on_random_annotations():
    pieces = ["1", "0", "05", "9", ".", "e", "e999999999", "_", "x", "j", "+", "-", "*", "/", "//", "%", "**", "(",
              ")", "=", " ", ",", "$", "'", "[", "]", "lambda", "0x", "__import__"]
    rng = random.Random(0)
    for _ in range(5000):
        body = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 20)))
        for check in check_annotations(f"<<{body}>>"):
            assert check.ok or check.error


# --- sample verdicts -------------------------------------------------------------------------------------------


QUESTION = "Tom has 5 apples. He buys 3 more and gives away 2. How many apples does he have?"


@pytest.mark.parametrize(
    ("question", "reasoning", "answer", "reason"),
    [
        (QUESTION, REASONING, "6", ""),
        (QUESTION, REASONING, "6.0", ""),
        ("   ", REASONING, "6", "format: empty question"),
        ("Tom has 5 <answer>6</answer>", REASONING, "6", "format: question contains answer markup"),
        ("How many? #### 6", REASONING, "6", "format: question contains answer markup"),
        ("How many? <<5+3=8>>", REASONING, "6", "format: question contains answer markup"),
        (QUESTION, REASONING, "six", "format: answer not numeric: 'six'"),
        (QUESTION, "Tom has 8 apples, then 6.", "6", "format: no calculator annotation"),
        (QUESTION, REASONING.replace("=6>>", "=7>>"), "7", "annotation: <<8-2=7>> computes 6"),
        (QUESTION, "<<6*y=6>>", "6", "annotation: <<6*y=6>> computes nothing (name 'y' is not allowed)"),
        (QUESTION, REASONING, "8", "answer: 8 differs from the last computed value 6"),
        ("Share 10 among 3.", "<<10/3=3.33>>", "3.33", ""),
        ("Share 1 among 3.", "<<1/3=0.33>>", "0.5", "answer: 0.5 differs from the last computed value 1/3"),
    ],
)
def test_verify_math_sample_reasons(question, reasoning, answer, reason):
    verdict = verify_math_sample(question, reasoning, answer)
    assert (verdict.verified, verdict.reason) == (reason == "", reason)
    assert bool(verdict.evidence) == verdict.verified


def test_a_verified_sample_says_which_checks_it_passed():
    assert verify_math_sample(QUESTION, REASONING, "6").evidence == (
        "calculator: 2 annotation(s) recomputed, the answer is the last; grounding: every number stated or computed "
        "before")
    assert verify_math_sample(TOM, "Tom has 5 - 3 = <<5-3=2>>2 apples left.", "2",
                              MathRules(grounding=False, reference_solver=True)).evidence == (
        "calculator: 1 annotation(s) recomputed, the answer is the last; reference solver: the same answer")


@pytest.mark.parametrize(("votes", "verdict"), [
    (["6", "6.0", "7", None], Verdict(True, "", evidence="answer model: 2/4 answers agree")),
    (["6", "7", "7", None], Verdict(False, "answer model: answers 7 (2/4), not 6")),
    (["6", "7", None, None], Verdict(False, "answer model: no clear majority (6 and 7 tie at 1/4)")),
    ([None, None], Verdict(False, "answer model: none of the 2 answers is a value")),
])
def test_answer_model_vote(votes, verdict):
    assert answer_model_vote(votes, "6", min_agreement=0.5) == verdict


def test_verify_batch_is_verify_math_sample_of_each():
    samples = [(QUESTION, REASONING, "6"), (QUESTION, REASONING, "8"), ("", REASONING, "6")]
    questions, reasonings, answers = (list(column) for column in zip(*samples))
    assert verify_batch(questions, reasonings, answers) == [verify_math_sample(*sample) for sample in samples]
    assert verify_batch([], [], []) == []
    with pytest.raises(ValueError):
        verify_batch(questions, reasonings, answers[:2])


DIFFICULTIES = [
    MathDifficulty(),
    MathDifficulty(min_steps=1, max_steps=1, min_value=1, max_value=100, operations=("+", "-")),
    MathDifficulty(min_steps=2, max_steps=4, min_value=2, max_value=12, operations=("+", "-", "*", "/")),
    MathDifficulty(min_steps=3, max_steps=5, min_value=3, max_value=30, operations=("*", "/", "-")),
    MathDifficulty(min_steps=1, max_steps=2, min_value=1, max_value=20, operations=("/",)),
    MathDifficulty(min_steps=6, max_steps=8, min_value=1, max_value=9, operations=("+", "-", "*", "/")),
]


@pytest.mark.parametrize("generate", [generate_word_problems, generate_arithmetic_drills])
@pytest.mark.parametrize("difficulty", DIFFICULTIES, ids=str)
def test_every_generated_problem_verifies(generate, difficulty):
    problems = generate(150, difficulty, seed=42)
    rules = MathRules(reference_solver=generate is generate_word_problems)  # the solver reads word problems only
    rejected = [(p, verify_math_sample(p.question, p.reasoning, p.answer, rules)) for p in problems]
    rejected = [(p.question, v.reason) for p, v in rejected if not v.verified]
    assert rejected == []


def test_tampered_generated_problem_is_rejected():
    problem = generate_word_problems(1, MathDifficulty(min_steps=2, max_steps=2), seed=0)[0]
    wrong_answer = str(int(problem.answer) + 1)
    verdict = verify_math_sample(problem.question, problem.reasoning, wrong_answer)
    assert verdict.reason == f"answer: {wrong_answer} differs from the last computed value {problem.answer}"


# --- real GSM8K ------------------------------------------------------------------------------------------------


@pytest.mark.skipif(not GSM8K.is_dir(), reason="../shared/datasets/gsm8k is absent")
def test_real_gsm8k_every_annotation_is_checked_and_the_exceptions_are_listed():
    records = load_gsm8k(str(GSM8K), split="train") + load_gsm8k(str(GSM8K), split="test")
    checks = [(problem.id, check) for problem in records for check in check_annotations(problem.reasoning)]
    # Every annotation in the text is checked, none dropped by the pattern.
    assert len(checks) == sum(problem.reasoning.count("<<") for problem in records)
    wrong = [(pid, c.markup, c.error) for pid, c in checks if not c.ok]
    rounded = [(pid, c.markup) for pid, c in checks if c.rounded]
    without_annotation = [p.id for p in records if "<<" not in p.reasoning]
    verdicts = verify_batch([p.question for p in records], [p.reasoning for p in records], [p.answer for p in records],
                            MathRules(grounding=False))
    verified = sum(verdict.verified for verdict in verdicts)
    print(
        f"GSM8K: {len(records)} records, {len(checks)} annotations, {len(wrong)} wrong, {len(rounded)} rounded, "
        f"{len(without_annotation)} records without annotation, {verified} pass verify_math_sample"
    )
    for exception in wrong + rounded:
        print("exception:", exception)
    assert len(records) == 7473 + 1319
    assert len(checks) == 27998
    # GSM8K's annotations were written by a calculator: none is wrong or rounded. List any that ever is.
    assert wrong + rounded == [], f"{len(wrong)} wrong: {wrong}; {len(rounded)} rounded: {rounded}"
    # Real solutions sometimes end on a step written without an annotation, which the sample rule rejects.
    assert len(without_annotation) == 113, without_annotation
    assert verified == 8209
    rejected = {verdict.reason.split(":")[0] for verdict in verdicts if not verdict.verified}
    assert rejected == {"format", "answer"}, rejected  # "no calculator annotation", "answer .. differs from last .."


# --- meaning: grounding, the answer, the reference solver ------------------------------------------------------

TOM = "Tom has 5 apples. Tom gives away 3 apples. How many apples does Tom have left?"
PROCEDURAL = MathRules(reference_solver=True)
REAL = MathRules(real_data=True, constants=frozenset({Fraction(60), Fraction(12)}))


@pytest.mark.parametrize(
    ("question", "reasoning", "answer", "rules", "reason"),
    [
        (TOM, "Tom has 5 - 3 = <<5-3=2>>2 apples left.", "2", PROCEDURAL, ""),
        # The example: right arithmetic, wrong operation; only the reference solver sees it.
        (TOM, "Tom has 5 + 3 = <<5+3=8>>8 apples.", "8", PROCEDURAL, "reference: the question's answer is 2, not 8"),
        # A quantity that is not in the question.
        (TOM, "Tom has 5 - 4 = <<5-4=1>>1 apple left.", "1", PROCEDURAL,
         "grounding: 4 in <<5-4=1>> is neither stated in the question nor computed earlier"),
        # Another problem's reasoning and answer.
        (TOM, "Ann has 7 * 2 = <<7*2=14>>14 pencils.", "14", PROCEDURAL,
         "grounding: 7 in <<7*2=14>> is neither stated in the question nor computed earlier"),
        # The answer is an intermediate value of the reasoning.
        ("Tom has 5 apples. Then Tom buys 3 more apples. Tom gives away 2 apples. How many apples does Tom have "
         "left?", "Tom has 5 + 3 = <<5+3=8>>8 apples.\nTom has 8 - 2 = <<8-2=6>>6 apples left.", "8", PROCEDURAL,
         "answer: 8 differs from the last computed value 6"),
        # The last step dropped: every annotation grounded and the answer is the last one, but not the question's.
        ("Tom has 5 apples. Then Tom buys 3 more apples. Tom gives away 2 apples. How many apples does Tom have "
         "left?", "Tom has 5 + 3 = <<5+3=8>>8 apples.", "8", PROCEDURAL,
         "reference: the question's answer is 6, not 8"),
        # A question outside the templates' grammar is unverifiable, never passed.
        ("Tom has 5 apples and eats 3 of them. How many are left?", "Tom has 5 - 3 = <<5-3=2>>2 left.", "2",
         PROCEDURAL, "reference: unverifiable question (cannot read the opening 'Tom has 5 apples and eats 3 of "
                     "them.')"),
        ("Tom has 5 apples. Ann gives away 3 apples. How many apples does Tom have left?",
         "Tom has 5 - 3 = <<5-3=2>>2 left.", "2", PROCEDURAL,
         "reference: unverifiable question ('Ann gives away 3 apples.' is about Ann, but Tom holds the apples)"),
        ("Tom has 2 apples. Tom gives away 3 apples. How many apples does Tom have left?",
         "<<3-2=1>>", "1", PROCEDURAL, "reference: unverifiable question ('Tom gives away 3 apples.' takes 3 of 2)"),
        # A last computation from constants alone answers nothing the question asks.
        ("Tom works 2 hours. How many minutes is that?", "2 * 60 = <<2*60=120>>120. So <<60/12=5>>5.", "5", REAL,
         "answer: the last computation <<60/12=5>> uses none of the question's quantities"),
        # Real data: a unit constant and a fact the reasoning states in an earlier clause are grounded.
        ("Tom works 2 hours at $3 a minute. How much does he earn?",
         "Tom works 2 * 60 = <<2*60=120>>120 minutes. He earns 120 * 3 = <<120*3=360>>360.", "360", REAL, ""),
        ("Ann has 4 dimes. How many cents does she have?",
         "A dime is 10 cents. So 4 * 10 = <<4*10=40>>40 cents.", "40", REAL, ""),
        # ... but not one that first appears in the computation itself, nor a constant in procedural data.
        ("Ann has 4 dimes. How many cents does she have?", "So 4 * 10 = <<4*10=40>>40 cents.", "40", REAL,
         "grounding: 10 in <<4*10=40>> is neither stated in the question nor computed earlier"),
        ("Tom works 2 hours. How many minutes?", "2 * 60 = <<2*60=120>>120.", "120", MathRules(),
         "grounding: 60 in <<2*60=120>> is neither stated in the question nor computed earlier"),
        # Number words, shares and percentages are stated quantities.
        ("Half of the twelve eggs broke. 25% of the rest were sold. How many were sold?",
         "12 / 2 = <<12/2=6>>6 remain. 6 * 0.25 = <<6*0.25=1.5>>1.5", "1.5", MathRules(), ""),
    ],
)
def test_math_meaning_checks(question, reasoning, answer, rules, reason):
    verdict = verify_math_sample(question, reasoning, answer, rules)
    assert (verdict.verified, verdict.reason) == (reason == "", reason)


@pytest.mark.parametrize("difficulty", DIFFICULTIES, ids=str)
def test_reference_solver_reads_every_template(difficulty):
    problems = generate_word_problems(200, difficulty, seed=7)
    solutions = [solve_word_problem(p.question) for p in problems]
    assert [(s.answer, s.steps) for s in solutions] == [(int(p.answer), p.reasoning.count("<<")) for p in problems]


def test_mismatched_procedural_pairs_are_rejected():
    problems = generate_word_problems(300, MathDifficulty(), seed=3)
    shifted = problems[1:] + problems[:1]
    verdicts = verify_batch([p.question for p in problems], [o.reasoning for o in shifted],
                            [o.answer for o in shifted], PROCEDURAL)
    passed = [p.question for p, v, o in zip(problems, verdicts, shifted) if v.verified and p.answer != o.answer]
    assert passed == []


@pytest.mark.skipif(not GSM8K.is_dir(), reason="../shared/datasets/gsm8k is absent")
def test_real_gsm8k_with_grounding():
    """Clean real GSM8K under the real-data rules, and its questions paired with the next record's solution."""
    from acqsynth.config import UNIT_CONSTANTS

    records = load_gsm8k(str(GSM8K), split="train") + load_gsm8k(str(GSM8K), split="test")
    rules = MathRules(real_data=True, constants=frozenset(Fraction(str(c)) for c in UNIT_CONSTANTS))
    clean = verify_batch([p.question for p in records], [p.reasoning for p in records], [p.answer for p in records],
                         rules)
    shifted = records[1:] + records[:1]
    mismatched = verify_batch([p.question for p in records], [o.reasoning for o in shifted],
                              [o.answer for o in shifted], rules)
    clean_rate = sum(v.verified for v in clean) / len(records)
    mismatched_rate = sum(v.verified for v in mismatched) / len(records)
    print(f"GSM8K with grounding: clean {clean_rate:.4f}, mismatched pairs {mismatched_rate:.4f}")
    # Without grounding 93.4% of clean records and 93.4% of mismatched pairs pass (the test above).
    assert mismatched_rate < 0.25
    assert clean_rate > 0.85
