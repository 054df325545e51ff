"""Verification of code samples: static checks that the question's tests are non-trivial and that the answer is
a real solution, then the answer and the tests run together in the sandbox.

A generated sample carries its tests in the question: a statement naming the function (`add_3(x)`), a `Tests:`
line, then asserts only. Reasons name the part that failed; `tests: line N` counts the lines of the
tests block (after `Tests:`) from 1.
"""

from __future__ import annotations

import ast
import re

from acqsynth.domains.code import SENTINEL_PREFIX, TESTS_HEADER, ran_to_end, test_program
from acqsynth.domains.sample import Verdict
from acqsynth.verify.sandbox import MissingLayers, SandboxLimits, SandboxResult, run_programs

_TESTS_LINE_RE = re.compile(rf"^[ \t]*{re.escape(TESTS_HEADER)}[ \t]*$", re.MULTILINE)
_FUNCTION_RE = re.compile(r"\b([A-Za-z_]\w*)\(")
_MIN_ASSERTS = 2
# Methods that decide ==, !=, <, ... and truth: an answer returning an object that defines them passes any assert.
_COMPARISON_METHODS = ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__bool__", "__len__")


def _parse(source: str, part: str) -> ast.Module | str:
    """The module, or why `part` (answer, tests) is not Python."""
    try:
        return ast.parse(source)
    except SyntaxError as error:
        where = f" line {error.lineno}" if error.lineno else ""  # null bytes have no line
        return f"{part}: SyntaxError{where}: {error.msg}"


def _calls(node: ast.AST, name: str) -> bool:
    return any(
        isinstance(child, ast.Call) and isinstance(child.func, ast.Name) and child.func.id == name
        for child in ast.walk(node)
    )


def _assert_problem(test: ast.expr, name: str) -> str | None:
    """Why one assert's outcome does not depend on `name` (so it tests nothing); None when it does."""
    if not any(isinstance(child, (ast.Name, ast.Call, ast.Attribute)) for child in ast.walk(test)):
        return "is constant"
    if not _calls(test, name):
        return f"does not call {name}"
    if isinstance(test, (ast.Tuple, ast.List, ast.Set, ast.Dict)):
        return "is a non-empty literal, which is always true"
    branches = test.values if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.Or) else (
        [test.body, test.orelse] if isinstance(test, ast.IfExp) else []
    )
    if not all(_calls(branch, name) for branch in branches):
        return f"has an 'or' or if-else branch that does not call {name}, so it can pass without it"
    if isinstance(test, ast.Compare) and all(_calls(side, name) for side in (test.left, *test.comparators)):
        return f"compares {name} only with itself"
    return None


def _tests_problem(module: ast.Module, name: str) -> str | None:
    """Why the question's tests are unusable (not asserts only, fewer than 2, trivial, repeated); None if fine."""
    seen: dict[str, int] = {}
    for statement in module.body:
        if not isinstance(statement, ast.Assert):
            return f"tests: line {statement.lineno} is not an assert (found {type(statement).__name__})"
        if (problem := _assert_problem(statement.test, name)) is not None:
            return f"tests: line {statement.lineno} {problem}"
        key = ast.dump(statement.test)
        if key in seen:
            return f"tests: line {statement.lineno} repeats line {seen[key]}"
        seen[key] = statement.lineno
    if len(module.body) < _MIN_ASSERTS:
        plural = "" if len(module.body) == 1 else "s"
        return f"tests: only {len(module.body)} assert{plural}; expected at least {_MIN_ASSERTS}"
    return None


def _answer_problem(answer: str, name: str) -> str | None:
    """Why the answer is not a plain solution defining `name`; None if it is one."""
    module = _parse(answer, "answer")
    if isinstance(module, str):
        return module
    if not any(isinstance(node, ast.FunctionDef) and node.name == name for node in module.body):
        return f"answer: does not define {name} (the function the question names)"
    if any(isinstance(node, ast.Assert) and _calls(node.test, name) for node in ast.walk(module)):
        return f"answer: contains an assert that calls {name}; tests belong in the question"
    if SENTINEL_PREFIX in answer:
        return "answer: mentions the test sentinel"
    for method in _COMPARISON_METHODS:
        if method in answer:
            return f"answer: mentions {method}, which can make an assert pass whatever {name} computes"
    return None


def _prepare(question: str, reasoning: str, answer: str) -> str | Verdict:
    """The program to run in the sandbox, or the verdict of the static check that rejected the sample."""
    if not reasoning.strip():
        return Verdict(False, "reasoning: empty")
    header = _TESTS_LINE_RE.search(question)
    if header is None:
        return Verdict(False, f"question: no '{TESTS_HEADER}' line before the asserts")
    names = _FUNCTION_RE.findall(question[: header.start()])
    if not names:
        return Verdict(False, f"question: no function named like add_3(x) before '{TESTS_HEADER}'")
    tests = question[header.end():].strip("\n")
    module = _parse(tests, "tests")
    if isinstance(module, str):
        return Verdict(False, module)
    # The statement may name other calls too ("use max(a, b)"): the function is the first named one the tests call.
    name = next((candidate for candidate in names if _calls(module, candidate)), names[0])
    problem = _tests_problem(module, name) or _answer_problem(answer, name)
    if problem is not None:
        return Verdict(False, problem)
    return test_program(answer, tests)


def _sandbox_verdict(program: str, result: SandboxResult) -> Verdict:
    if result.verdict != "passed":
        return Verdict(False, f"sandbox {result.verdict}: {result.reason}")
    if not ran_to_end(program, result.stdout):
        return Verdict(False, "sandbox: passed, but the tests' completion sentinel is missing from stdout")
    return Verdict(True, "")


def verify_batch(
    questions: list[str],
    reasonings: list[str],
    answers: list[str],
    workers: int = 1,
    limits: SandboxLimits | None = None,
    missing_layers: MissingLayers = "refuse",
) -> list[Verdict]:
    """The verdict of each sample; the samples that pass the static checks run in the sandbox, `workers` at once."""
    if not len(questions) == len(reasonings) == len(answers):
        raise ValueError(
            f"questions, reasonings and answers differ in length: {len(questions)}, {len(reasonings)}, {len(answers)}"
        )
    prepared = [_prepare(q, r, a) for q, r, a in zip(questions, reasonings, answers)]
    programs = [item for item in prepared if isinstance(item, str)]
    results = iter(run_programs(programs, limits or SandboxLimits(), workers, missing_layers))
    return [_sandbox_verdict(item, next(results)) if isinstance(item, str) else item for item in prepared]


def verify_code_sample(question: str, reasoning: str, answer: str, limits: SandboxLimits | None = None) -> Verdict:
    return verify_batch([question], [reasoning], [answer], limits=limits)[0]


def grade_solutions(
    solutions: list[str | None], tests: list[str], workers: int = 1, limits: SandboxLimits | None = None,
    missing_layers: MissingLayers = "refuse",
) -> list[bool]:
    """Whether each predicted solution passes its example's test program (`Example.tests`); None fails."""
    if len(solutions) != len(tests):
        raise ValueError(f"solutions and tests differ in length: {len(solutions)} and {len(tests)}")
    programs = {i: test_program(solution, test) for i, (solution, test) in enumerate(zip(solutions, tests))
                if solution is not None}
    results = run_programs(list(programs.values()), limits or SandboxLimits(), workers, missing_layers)
    passed = {i: result.passed and ran_to_end(program, result.stdout)
              for (i, program), result in zip(programs.items(), results)}
    return [passed.get(i, False) for i in range(len(solutions))]
