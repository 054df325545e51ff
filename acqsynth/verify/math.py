"""Verification of math samples: that the answer answers the question, not only that the arithmetic is right.

In order, each check naming itself in the rejection reason ("<check>: <detail>"):
- format: a question without answer markup, a numeric answer, at least one calculator annotation;
- annotation: every `<<expr=value>>` recomputed exactly and safely;
- grounding: every number an annotation starts from is a quantity the question states, or the result of an earlier
  annotation; for real data (GSM8K, NuminaMath) also a number the reasoning states in an earlier clause (a fact it
  brings in: "A dime is 10 cents.") or one of the allowed unit constants (`MathRules.constants`). Procedural
  questions state every quantity, so neither is allowed there;
- answer: the answer is the value of the last annotation, and that annotation builds on the question's quantities
  (directly or through earlier results);
- reference: for procedural data, the domain's reference solver reads the question with the grammar of its
  templates and computes the answer independently; a question it cannot read is rejected as unverifiable.
The answer model's vote on real data needs a model and runs in the verify stage (`acqsynth.stages`).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from acqsynth.domains.math.answers import answers_match, format_number, parse_number, question_quantities
from acqsynth.domains.math.problems import solve_word_problem
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


@dataclass(frozen=True)
class MathRules:
    """What `verify_math_sample` checks beyond the format and the annotations (see the module docstring)."""

    grounding: bool = True
    real_data: bool = False  # allow stated-in-reasoning facts and `constants`
    constants: frozenset[Fraction] = field(default_factory=frozenset)
    reference_solver: bool = False


_CLAUSE_END_RE = re.compile(r"[.;,:!?](?=\s)|\n")


def _literals(expression: str) -> list[Fraction]:
    """The number literals of an annotation's expression (already known to evaluate)."""
    source = _LEADING_ZEROS_RE.sub("", expression.strip())
    tree = ast.parse(source, mode="eval")
    return [_literal(ast.get_source_segment(source, node) or repr(node.value)) for node in ast.walk(tree)
            if isinstance(node, ast.Constant)]


def _grounding_problem(question: str, reasoning: str, checks: list[AnnotationCheck], rules: MathRules) -> str:
    """Why some annotation starts from a number that nothing grounds, or why the last one does not build on the
    question; "" when every number is grounded."""
    stated = question_quantities(question)
    results: set[Fraction] = set()
    builds_on_question = False
    clause_starts = [0] + [match.end() for match in _CLAUSE_END_RE.finditer(reasoning)]
    for match, check in zip(_ANNOTATION_RE.finditer(reasoning), checks, strict=True):
        facts: set[Fraction] = set()
        if rules.real_data:
            clause = max(start for start in clause_starts if start <= match.start())
            facts = question_quantities(_ANNOTATION_RE.sub(" ", reasoning[:clause])) | rules.constants
        literals = _literals(check.expression)
        for literal in literals:
            if literal not in stated and literal not in results and literal not in facts:
                return (f"grounding: {format_number(literal)} in {check.markup} is neither stated in the question nor "
                        "computed earlier")
        builds_on_question = any(literal in stated or literal in results for literal in literals)
        results |= {check.computed, parse_number(check.claimed)}
    if not builds_on_question:
        return f"answer: the last computation {checks[-1].markup} uses none of the question's quantities"
    return ""


def verify_math_sample(question: str, reasoning: str, answer: str, rules: MathRules | None = None) -> Verdict:
    """Accept a sample only if it passes every check of the module docstring that `rules` turns on."""
    rules = rules or MathRules()
    if not question.strip():
        return Verdict(False, "format: empty question")
    if any(markup in question for markup in _ANSWER_MARKUP):
        return Verdict(False, "format: question contains answer markup")
    answer_value = parse_number(answer)
    if answer_value is None:
        return Verdict(False, f"format: answer not numeric: {answer!r}")
    checks = check_annotations(reasoning)
    if not checks:
        return Verdict(False, "format: no calculator annotation")
    for check in checks:
        if not check.ok:
            computed = format_number(check.computed) if check.computed is not None else f"nothing ({check.error})"
            return Verdict(False, f"annotation: {check.markup} computes {computed}")
    last = checks[-1]
    # A rounded last step is answered with its rounded (claimed) value, as GSM8K does.
    accepted = {last.computed, parse_number(last.claimed)}
    if answer_value not in accepted:
        return Verdict(
            False, f"answer: {answer.strip()} differs from the last computed value {format_number(last.computed)}"
        )
    if rules.grounding and (problem := _grounding_problem(question, reasoning, checks, rules)):
        return Verdict(False, problem)
    passed = [f"calculator: {len(checks)} annotation(s) recomputed, the answer is the last"]
    if rules.grounding:
        passed.append("grounding: every number stated or computed before")
    if rules.reference_solver:
        try:
            solution = solve_word_problem(question)
        except ValueError as error:
            return Verdict(False, f"reference: unverifiable question ({error})")
        if solution.answer != answer_value:
            return Verdict(False, f"reference: the question's answer is {format_number(solution.answer)}, not "
                                  f"{answer.strip()}")
        passed.append("reference solver: the same answer")
    return Verdict(True, "", evidence="; ".join(passed))


def verify_batch(questions: Sequence[str], reasonings: Sequence[str], answers: Sequence[str],
                 rules: MathRules | None = None) -> list[Verdict]:
    """`verify_math_sample` of each (question, reasoning, answer); the domain contract's batch form."""
    return [
        verify_math_sample(question, reasoning, answer, rules)
        for question, reasoning, answer in zip(questions, reasonings, answers, strict=True)
    ]


def answer_model_vote(votes: Sequence[str | None], answer: str, min_agreement: float) -> Verdict:
    """The answer model's k answers (None: no answer) against the sample's: verified when one value alone has the
    most votes, at least `min_agreement` of all k, and it is the sample's answer (compared by value)."""
    if not votes:
        raise ValueError("votes must not be empty")
    if not 0 < min_agreement <= 1:
        raise ValueError(f"min_agreement must be in (0, 1], got {min_agreement}")
    clusters: list[tuple[str, int]] = []  # (the first vote of a value, its count)
    for vote in votes:
        if vote is None:
            continue
        match = next((i for i, (text, _) in enumerate(clusters) if answers_match(vote, text)), None)
        if match is None:
            clusters.append((vote, 1))
        else:
            clusters[match] = (clusters[match][0], clusters[match][1] + 1)
    k = len(votes)
    clusters.sort(key=lambda cluster: -cluster[1])
    if not clusters:
        return Verdict(False, f"answer model: none of the {k} answers is a value")
    (top, top_votes), rest = clusters[0], clusters[1:]
    if rest and rest[0][1] == top_votes:
        return Verdict(False, f"answer model: no clear majority ({top} and {rest[0][0]} tie at {top_votes}/{k})")
    if top_votes / k < min_agreement:
        return Verdict(False, f"answer model: no clear majority ({top} has {top_votes}/{k}, below "
                              f"{min_agreement:g})")
    if not answers_match(top, answer):
        return Verdict(False, f"answer model: answers {top} ({top_votes}/{k}), not {answer.strip()}")
    return Verdict(True, "", evidence=f"answer model: {top_votes}/{k} answers agree")
