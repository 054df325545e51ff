"""Verification of code samples: static checks that the question's tests are non-trivial and that the answer is
a real solution, then the answer and the tests run in the sandbox (as a TestedSolution: in two processes, with only
plain data passing between them, so an answer can neither forge a pass nor return an object that equals anything),
and then the tests must determine the
function: they reject at least one simple mutant of the answer (a constant changed by one, an operator swapped,
the value returned replaced by the first argument), run in the sandbox the same way.

A generated sample carries its tests in the question: a statement naming the function (`add_3(x)`), a `Tests:`
line, then asserts only. Where the name is a procedural task's (`add_3`, `keep_over_4_then_sum`), every test that
compares a call on literal arguments with a literal must hold for the function that name stands for
(`acqsynth.domains.code.procedural_function`), so a verified sample is right for the task it states, not only
consistent with itself. Reasons name the part that failed; `tests: line N` counts the lines of the
tests block (after `Tests:`) from 1.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, replace

from acqsynth.domains.code import TESTS_HEADER, procedural_function, test_setup
from acqsynth.domains.sample import Verdict
from acqsynth.verify.sandbox import MissingLayers, SandboxLimits, SandboxResult, TestedSolution, run_programs

_TESTS_LINE_RE = re.compile(rf"^[ \t]*{re.escape(TESTS_HEADER)}[ \t]*$", re.MULTILINE)
_FUNCTION_RE = re.compile(r"\b([A-Za-z_]\w*)\(")
_MIN_ASSERTS = 2


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


def _reference_problem(module: ast.Module, name: str) -> str | None:
    """Why a test contradicts the function a procedural task's name stands for (`add_3`: x + 3), read from its
    literal arguments and expected value; None when none does, or the name stands for no procedural function."""
    function = procedural_function(name)
    if function is None:
        return None
    for statement in module.body:
        test = statement.test if isinstance(statement, ast.Assert) else None
        if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)
                and isinstance(test.left, ast.Call) and isinstance(test.left.func, ast.Name)
                and test.left.func.id == name and not test.left.keywords):
            continue
        try:
            arguments = [ast.literal_eval(argument) for argument in test.left.args]
            expected = ast.literal_eval(test.comparators[0])
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
        try:
            value = function(*arguments)
        except Exception:  # noqa: BLE001 - arguments the function cannot take: the task states nothing for them
            return f"tests: line {statement.lineno} calls {name} with arguments its task does not take"
        if value != expected or type(value) is not type(expected):
            return (f"tests: line {statement.lineno} expects {expected!r}, but {name} as its name states gives "
                    f"{value!r}")
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
    return None


# Each operator's mutant: the nearest other operator, so that a mutant stays a plausible wrong function.
_SWAPPED_OPERATORS: dict[type, type] = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Add, ast.Div: ast.Mult, ast.FloorDiv: ast.Mult,
    ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult, ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.And: ast.Or, ast.Or: ast.And,
}


def _function(module: ast.Module, name: str) -> ast.FunctionDef:
    return next(node for node in module.body if isinstance(node, ast.FunctionDef) and node.name == name)


def _mutation_points(tree: ast.Module, name: str) -> list[tuple]:
    """(kind, node[, index]) of every place in the function `name` that a simple mutant changes, in walk order."""
    points: list[tuple] = []
    for node in ast.walk(_function(tree, name)):
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            points.append(("constant", node))
        elif isinstance(node, (ast.BinOp, ast.BoolOp)) and type(node.op) in _SWAPPED_OPERATORS:
            points.append(("operator", node))
        elif isinstance(node, ast.Compare):
            points += [("compare", node, i) for i, op in enumerate(node.ops) if type(op) in _SWAPPED_OPERATORS]
        elif isinstance(node, ast.Return) and node.value is not None:
            points.append(("return", node))
    return points


def mutants(answer: str, name: str, limit: int) -> list[str]:
    """Up to `limit` distinct single-point mutants of the function `name` in `answer`, in source order: a number
    constant plus one, an operator swapped (`_SWAPPED_OPERATORS`), a returned value replaced by the first
    argument."""
    original = ast.unparse(ast.parse(answer))
    found: list[str] = []
    for index in range(len(_mutation_points(ast.parse(answer), name))):
        if len(found) >= limit:
            break
        tree = ast.parse(answer)  # a fresh tree per mutant; the walk order finds point `index` again
        point = _mutation_points(tree, name)[index]
        kind, node = point[0], point[1]
        if kind == "constant":
            node.value = node.value + 1
        elif kind == "operator":
            node.op = _SWAPPED_OPERATORS[type(node.op)]()
        elif kind == "compare":
            node.ops[point[2]] = _SWAPPED_OPERATORS[type(node.ops[point[2]])]()
        else:
            arguments = _function(tree, name).args.args
            if not arguments:
                continue
            node.value = ast.Name(arguments[0].arg, ast.Load())
        source = ast.unparse(ast.fix_missing_locations(tree))
        if source != original and source not in found:
            found.append(source)
    return found


@dataclass(frozen=True)
class _Prepared:
    """A sample that passed the static checks: what the sandbox runs, and its tests and function for the mutants."""

    program: TestedSolution
    tests: str
    name: str


def _prepare(question: str, reasoning: str, answer: str) -> _Prepared | Verdict:
    """What to run in the sandbox, or the verdict of the static check that rejected the sample."""
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
    problem = _tests_problem(module, name) or _reference_problem(module, name) or _answer_problem(answer, name)
    if problem is not None:
        return Verdict(False, problem)
    return _Prepared(TestedSolution(answer, tests), tests, name)


def _sandbox_verdict(result: SandboxResult, tests: str) -> Verdict:
    if result.verdict != "passed":
        return Verdict(False, f"sandbox {result.verdict}: {result.reason}")
    asserts = sum(line.lstrip().startswith("assert") for line in tests.splitlines())
    return Verdict(True, "", evidence=f"sandbox: its {asserts} asserts pass")


def verify_batch(
    questions: list[str],
    reasonings: list[str],
    answers: list[str],
    workers: int = 1,
    limits: SandboxLimits | None = None,
    max_mutants: int = 8,
    missing_layers: MissingLayers = "refuse",
) -> list[Verdict]:
    """The verdict of each sample; the samples that pass the static checks run in the sandbox, `workers` at once,
    and then up to `max_mutants` mutants of each that passed (0: no mutant check)."""
    if not len(questions) == len(reasonings) == len(answers):
        raise ValueError(
            f"questions, reasonings and answers differ in length: {len(questions)}, {len(reasonings)}, {len(answers)}"
        )
    limits = limits or SandboxLimits()
    prepared = [_prepare(q, r, a) for q, r, a in zip(questions, reasonings, answers)]
    runnable = [item for item in prepared if isinstance(item, _Prepared)]
    results = iter(run_programs([item.program for item in runnable], limits, workers, missing_layers))
    verdicts = {id(item): _sandbox_verdict(next(results), item.tests) for item in runnable}
    if max_mutants:
        passing = [(item, answer) for item, answer in zip(prepared, answers)
                   if isinstance(item, _Prepared) and verdicts[id(item)].verified]
        # Every mutant of every passing sample in one sandbox batch.
        programs = [(item, [TestedSolution(mutant, item.tests) for mutant in mutants(answer, item.name, max_mutants)])
                    for item, answer in passing]
        # A mutant that runs far longer than its original is told apart already: a shorter leash keeps the
        # cost of mutants that loop forever small.
        leash = replace(limits, cpu_seconds=min(limits.cpu_seconds, 2), wall_seconds=min(limits.wall_seconds, 4.0))
        outcomes = iter(run_programs([program for _, group in programs for program in group], leash, workers,
                                     missing_layers))
        for item, group in programs:
            killed = sum(not _sandbox_verdict(next(outcomes), item.tests).verified for _ in group)
            verdicts[id(item)] = _mutants_verdict(verdicts[id(item)], item.name, len(group), killed)
    return [verdicts[id(item)] if isinstance(item, _Prepared) else item for item in prepared]


def _mutants_verdict(tested: Verdict, name: str, tried: int, killed: int) -> Verdict:
    if tried == 0:
        return Verdict(False, f"tests: {name} has no constant, operator or return value to mutate, so nothing shows "
                              "that the tests determine it")
    if killed == 0:
        return Verdict(False, f"tests: pass all {tried} simple mutants of {name} (a changed constant, operator or "
                              "return value), so they do not determine the function")
    return Verdict(True, "", evidence=f"{tested.evidence}; {killed} of {tried} simple mutants fail them")


def verify_code_sample(question: str, reasoning: str, answer: str, limits: SandboxLimits | None = None,
                       max_mutants: int = 8) -> Verdict:
    return verify_batch([question], [reasoning], [answer], limits=limits, max_mutants=max_mutants)[0]


def grade_solutions(
    solutions: list[str | None], tests: list[str], workers: int = 1, limits: SandboxLimits | None = None,
    missing_layers: MissingLayers = "refuse",
) -> list[bool]:
    """Whether each predicted solution passes its example's tests (`Example.tests`); None fails."""
    if len(solutions) != len(tests):
        raise ValueError(f"solutions and tests differ in length: {len(solutions)} and {len(tests)}")
    programs = {i: TestedSolution(test_setup(test) + solution, test)
                for i, (solution, test) in enumerate(zip(solutions, tests)) if solution is not None}
    results = run_programs(list(programs.values()), limits or SandboxLimits(), workers, missing_layers)
    passed = {i: result.passed for i, result in zip(programs, results)}
    return [passed.get(i, False) for i in range(len(solutions))]
