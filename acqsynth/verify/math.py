"""Verification of math samples: every calculator annotation `<<expr=value>>` is recomputed exactly, safely, and the
answer must be the last computed value."""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from acqsynth.domains.math import format_number, parse_number
from acqsynth.domains.sample import Verdict

_ANNOTATION_RE = re.compile(r"<<([^<>]*)>>")
# Python rejects "05"; GSM8K-style text may write it. Only whole-number leading zeros: never after a decimal point,
# nor inside a name or a `1_000` literal.
_LEADING_ZEROS_RE = re.compile(r"(?<![\w.])0+(?=\d)")
_MAX_EXPRESSION_CHARS = 200
_MAX_EXPONENT = 64
_MAX_MAGNITUDE = 10**100
# Literals like 1e999999999 would be built digit by digit before any magnitude check.
_MAX_LITERAL_EXPONENT = 100
_ANSWER_MARKUP = ("<question>", "</question>", "<reasoning>", "</reasoning>", "<answer>", "</answer>", "####", "<<")


def _bounded(value: Fraction) -> Fraction:
    if abs(value.numerator) > _MAX_MAGNITUDE or value.denominator > _MAX_MAGNITUDE:
        raise ValueError("number too large")
    return value


def _literal(text: str) -> Fraction:
    """The exact value of a number literal's own text (not the float, which would make 0.1 inexact)."""
    _, e, exponent = text.lower().partition("e")
    if e and abs(int(exponent)) > _MAX_LITERAL_EXPONENT:
        raise ValueError("number too large")
    return _bounded(Fraction(text))


def _evaluate_node(node: ast.AST, source: str) -> Fraction:
    if isinstance(node, ast.Constant):
        if type(node.value) not in (int, float):
            raise ValueError(f"only numbers are allowed, got {node.value!r}")
        return _literal(ast.get_source_segment(source, node) or repr(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = _evaluate_node(node.operand, source)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        left, right = _evaluate_node(node.left, source), _evaluate_node(node.right, source)
        if isinstance(node.op, ast.Add):
            result = left + right
        elif isinstance(node.op, ast.Sub):
            result = left - right
        elif isinstance(node.op, ast.Mult):
            result = left * right
        elif isinstance(node.op, (ast.Div, ast.FloorDiv, ast.Mod)):
            if right == 0:
                raise ValueError("division by zero")
            if isinstance(node.op, ast.Div):
                result = left / right
            elif isinstance(node.op, ast.FloorDiv):
                result = Fraction(left // right)
            else:
                result = left % right
        elif isinstance(node.op, ast.Pow):
            if right.denominator != 1 or abs(right) > _MAX_EXPONENT:
                raise ValueError(f"exponent must be a whole number of at most {_MAX_EXPONENT}, got {right}")
            if left == 0 and right < 0:
                raise ValueError("division by zero")
            result = left ** int(right)
        else:
            raise ValueError(f"operator {type(node.op).__name__} is not allowed")
        return _bounded(result)
    if isinstance(node, ast.Name):
        raise ValueError(f"name {node.id!r} is not allowed")
    raise ValueError(f"{type(node).__name__} is not allowed in a calculator annotation")


def evaluate_expression(expression: str) -> Fraction:
    """The exact value of an arithmetic expression (numbers, + - * / // % **, parentheses); ValueError otherwise.

    Parsed with `ast` and walked node by node: nothing is ever executed, so names and calls are refused.
    """
    if len(expression) > _MAX_EXPRESSION_CHARS:
        raise ValueError(f"expression longer than {_MAX_EXPRESSION_CHARS} characters")
    source = _LEADING_ZEROS_RE.sub("", expression.strip())
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError:
        raise ValueError(f"not an arithmetic expression: {expression!r}") from None
    return _evaluate_node(tree.body, source)


@dataclass(frozen=True)
class AnnotationCheck:
    """One `<<expression=claimed>>`: ok when the claim equals the computed value, or equals it rounded (rounded)."""

    expression: str
    claimed: str
    computed: Fraction | None
    ok: bool
    error: str
    rounded: bool = False

    @property
    def markup(self) -> str:
        return f"<<{self.expression}={self.claimed}>>"


def _decimal_places(number_text: str) -> int:
    _, point, decimals = number_text.strip().partition(".")
    return len(decimals) if point else 0


def _check_annotation(body: str) -> AnnotationCheck:
    expression, equals, claimed = body.rpartition("=")
    if not equals:
        return AnnotationCheck(body, "", None, ok=False, error="no '=' in annotation")
    try:
        computed = evaluate_expression(expression)
    except ValueError as error:
        return AnnotationCheck(expression, claimed, None, ok=False, error=str(error))
    claimed_value = parse_number(claimed)
    if claimed_value is None:
        error = f"claimed value {claimed!r} is not a number"
        return AnnotationCheck(expression, claimed, computed, ok=False, error=error)
    if claimed_value == computed:
        return AnnotationCheck(expression, claimed, computed, ok=True, error="")
    # Rounded to the claim's own number of decimals (round half either way): 100/3=33.33 is accepted, flagged.
    if abs(claimed_value - computed) <= Fraction(1, 2 * 10 ** _decimal_places(claimed)):
        return AnnotationCheck(expression, claimed, computed, ok=True, error="", rounded=True)
    return AnnotationCheck(
        expression, claimed, computed, ok=False, error=f"computes {format_number(computed)}, not {claimed.strip()}"
    )


def check_annotations(reasoning: str) -> list[AnnotationCheck]:
    """Every `<<expr=value>>` in `reasoning`, in order, each recomputed exactly."""
    return [_check_annotation(match[1]) for match in _ANNOTATION_RE.finditer(reasoning)]


def verify_math_sample(question: str, reasoning: str, answer: str) -> Verdict:
    """Accept a sample only if every annotation is right and the answer is the last computed value."""
    if not question.strip():
        return Verdict(False, "empty question")
    if any(markup in question for markup in _ANSWER_MARKUP):
        return Verdict(False, "question contains answer markup")
    answer_value = parse_number(answer)
    if answer_value is None:
        return Verdict(False, f"answer not numeric: {answer!r}")
    checks = check_annotations(reasoning)
    if not checks:
        return Verdict(False, "no calculator annotation")
    for check in checks:
        if not check.ok:
            computed = format_number(check.computed) if check.computed is not None else f"nothing ({check.error})"
            return Verdict(False, f"annotation wrong: {check.markup} computes {computed}")
    last = checks[-1]
    # A rounded last step is answered with its rounded (claimed) value, as GSM8K does.
    accepted = {last.computed, parse_number(last.claimed)}
    if answer_value not in accepted:
        return Verdict(
            False, f"answer {answer.strip()} differs from last computed value {format_number(last.computed)}"
        )
    return Verdict(True, "")


def verify_batch(questions: Sequence[str], reasonings: Sequence[str], answers: Sequence[str]) -> list[Verdict]:
    """`verify_math_sample` of each (question, reasoning, answer); the domain contract's batch form."""
    return [
        verify_math_sample(question, reasoning, answer)
        for question, reasoning, answer in zip(questions, reasonings, answers, strict=True)
    ]
