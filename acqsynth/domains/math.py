"""Math domain: GSM8K-format word problems (procedural and real), NuminaMath-style records, and answers compared
by value (numbers and LaTeX expressions).

A record is an `Example`; for GSM8K its `reasoning` is the worked solution without the final `#### answer` line,
with one calculator annotation `<<a op b=c>>` per step so that `acqsynth.verify.math` can check every step.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mpmath

from acqsynth.domains.records import jsonl_rows, looks_like_hub_id
from acqsynth.domains.sample import Example, answer_text, graded_by_answer, unique_questions

if TYPE_CHECKING:
    import pandas as pd

    from acqsynth.domains.sample import Verdict
    from acqsynth.verify.samples import VerifyRules
    from acqsynth.verify.sandbox import MissingLayers

_log = logging.getLogger(__name__)

OPERATIONS = ("+", "-", "*", "/")


def gsm8k_solution(problem: Example) -> str:
    """The GSM8K `answer` field: worked solution, then the `#### answer` line."""
    return f"{problem.reasoning}\n#### {problem.answer}"


# ---------------------------------------------------------------------------------------------------------------
# Numbers


_DECIMAL_RE = re.compile(r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+")
_FRACTION_RE = re.compile(r"(\d+)/(\d+)")


def parse_number(text: str) -> Fraction | None:
    """The exact value of `42`, `-3.5`, `1,000`, `$12`, `-$5`, `3/4`; None for anything else."""
    body = text.strip()
    negative = body.startswith("-")
    if body[:1] in ("-", "+"):
        body = body[1:]
    if body.startswith("$"):
        body = body[1:]
    if match := _FRACTION_RE.fullmatch(body):
        numerator, denominator = int(match[1]), int(match[2])
        if denominator == 0:
            return None
        value = Fraction(numerator, denominator)
    elif _DECIMAL_RE.fullmatch(body):
        value = Fraction(body.replace(",", "").rstrip("."))
    else:
        return None
    return -value if negative else value


def format_number(value: Fraction) -> str:
    """`21`, `-0.25`, or `1/3` when the value has no finite decimal form."""
    if value.denominator == 1:
        return str(value.numerator)
    # A finite decimal needs as many places as the larger power of 2 or 5 in the denominator.
    denominator, twos, fives = value.denominator, 0, 0
    while denominator % 2 == 0:
        denominator, twos = denominator // 2, twos + 1
    while denominator % 5 == 0:
        denominator, fives = denominator // 5, fives + 1
    if denominator != 1:
        return f"{value.numerator}/{value.denominator}"
    decimals = max(twos, fives)
    scaled = abs(value) * 10**decimals
    digits = str(scaled.numerator).rjust(decimals + 1, "0")
    sign = "-" if value < 0 else ""
    return f"{sign}{digits[:-decimals]}.{digits[-decimals:]}"


def _normalise_number_text(text: str) -> str:
    """Drop the decorations GSM8K and models put on numbers: thousands commas, `$`, a trailing full stop."""
    return text.strip().replace(",", "").replace("$", "").rstrip(".")


# ---------------------------------------------------------------------------------------------------------------
# Difficulty and the shared choice of each step


@dataclass(frozen=True)
class MathDifficulty:
    """Knobs of the procedural generators.

    Every number written in a question lies in [min_value, max_value]; multipliers and divisors are at least 2
    (x 1 and / 1 teach nothing); every intermediate result is a whole number >= 1 (so subtraction never goes
    negative and division is exact); products stay <= max_value ** 2 so numbers stay small for a tiny model.
    """

    min_steps: int = 1
    max_steps: int = 2
    min_value: int = 1
    max_value: int = 20
    operations: tuple[str, ...] = ("+", "-")

    def __post_init__(self) -> None:
        if self.min_steps < 1:
            raise ValueError(f"MathDifficulty.min_steps must be >= 1, got {self.min_steps}")
        if self.max_steps < self.min_steps:
            raise ValueError(
                f"MathDifficulty.max_steps must be >= min_steps ({self.min_steps}), got {self.max_steps}"
            )
        if self.min_value < 1:
            raise ValueError(f"MathDifficulty.min_value must be >= 1, got {self.min_value}")
        if self.max_value < self.min_value:
            raise ValueError(
                f"MathDifficulty.max_value must be >= min_value ({self.min_value}), got {self.max_value}"
            )
        if not isinstance(self.operations, tuple) or not self.operations:
            raise ValueError(
                f"MathDifficulty.operations must be a non-empty tuple drawn from {OPERATIONS}, "
                f"got {self.operations!r}"
            )
        unknown = [op for op in self.operations if op not in OPERATIONS]
        if unknown:
            raise ValueError(f"MathDifficulty.operations must be drawn from {OPERATIONS}, got unknown {unknown}")
        if self.max_value < 2 and ("*" in self.operations or "/" in self.operations):
            raise ValueError(
                f"MathDifficulty.max_value must be >= 2 when operations include '*' or '/', got {self.max_value}"
            )


def _operand_range(op: str, value: int, difficulty: MathDifficulty) -> list[int]:
    """Operands b for which `value op b` keeps every rule of MathDifficulty."""
    low, high = difficulty.min_value, difficulty.max_value
    if op == "+":
        return list(range(low, high + 1))
    if op == "-":
        return list(range(low, min(high, value - 1) + 1))
    if op == "*":
        return list(range(max(2, low), min(high, difficulty.max_value**2 // value) + 1))
    return [b for b in range(max(2, low), high + 1) if value % b == 0]


def _apply(op: str, a: int, b: int) -> int:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return a // b


def _choose_step(rng: random.Random, value: int, difficulty: MathDifficulty) -> tuple[str, int] | None:
    """A random allowed operation that can apply to `value`, and its operand; None when none can."""
    choices = {op: _operand_range(op, value, difficulty) for op in difficulty.operations}
    feasible = [op for op, operands in choices.items() if operands]
    if not feasible:
        return None
    op = rng.choice(feasible)
    return op, rng.choice(choices[op])


def _step_chain(rng: random.Random, difficulty: MathDifficulty) -> tuple[int, list[tuple[str, int]]]:
    """A start value and the (op, operand) steps applied to it, with a step count drawn from the knobs."""
    steps = rng.randint(difficulty.min_steps, difficulty.max_steps)
    # Some knob settings (e.g. only "/") dead-end from some start values: redraw rather than shorten the chain.
    for _ in range(200):
        start = value = rng.randint(difficulty.min_value, difficulty.max_value)
        chain: list[tuple[str, int]] = []
        while len(chain) < steps and (step := _choose_step(rng, value, difficulty)) is not None:
            chain.append(step)
            value = _apply(step[0], value, step[1])
        if len(chain) == steps:
            return start, chain
    raise ValueError(
        f"cannot build a {steps}-step chain from {difficulty}: widen [min_value, max_value] or add operations"
    )


def _annotated(a: int, op: str, b: int) -> str:
    """`a op b = <<a op b=c>>c`, GSM8K's written step with its calculator annotation."""
    result = _apply(op, a, b)
    return f"{a} {op} {b} = <<{a}{op}{b}={result}>>{result}"


# ---------------------------------------------------------------------------------------------------------------
# Word problems

_NAMES = ("Tom", "Ann", "Ben", "Mia", "Sam", "Lily", "Max", "Emma", "Leo", "Zoe", "Jack", "Kate")
_OBJECTS = (
    ("apple", "apples"),
    ("pencil", "pencils"),
    ("sticker", "stickers"),
    ("marble", "marbles"),
    ("cookie", "cookies"),
    ("book", "books"),
    ("ball", "balls"),
    ("card", "cards"),
    ("shell", "shells"),
    ("candy", "candies"),
)
_START_VERBS = ("has", "buys", "finds")
_TAKE_AWAY_VERBS = ("sells", "loses", "eats")


def _noun(n: int, noun: tuple[str, str]) -> str:
    return noun[0] if n == 1 else noun[1]


def _count(n: int, noun: tuple[str, str]) -> str:
    return f"{n} {_noun(n, noun)}"


@dataclass
class _Story:
    """The running state of a word problem: who holds the current quantity, of what, and the names still free."""

    holder: str
    thing: tuple[str, str]
    value: int
    free_names: list[str]
    ask: str  # the verb phrase of the final question, e.g. "does Tom have now"


def _held(story: _Story) -> str:
    """The noun for the current quantity, singular for one."""
    return _noun(story.value, story.thing)


# A template renders one step: given the story, op operand b and the rng, it returns the question sentence and the
# reasoning line (exactly one annotation) and updates the story. It may be unusable (needs a free name) -> None.
_Template = Callable[[_Story, int, random.Random], tuple[str, str] | None]


def _buys_more(story: _Story, b: int, rng: random.Random) -> tuple[str, str]:
    x, calc = story.holder, _annotated(story.value, "+", b)
    story.value += b
    story.ask = f"does {x} have now"
    return f"Then {x} buys {b} more {_noun(b, story.thing)}.", f"After buying more, {x} has {calc} {_held(story)}."


def _is_given(story: _Story, b: int, rng: random.Random) -> tuple[str, str] | None:
    if not story.free_names:
        return None
    giver, x, calc = story.free_names.pop(), story.holder, _annotated(story.value, "+", b)
    story.value += b
    story.ask = f"does {x} have now"
    return f"{giver} gives {x} {_count(b, story.thing)}.", f"{x} now has {calc} {_held(story)}."


def _gives_away(story: _Story, b: int, rng: random.Random) -> tuple[str, str]:
    x, calc = story.holder, _annotated(story.value, "-", b)
    story.value -= b
    story.ask = f"does {x} have left"
    return f"{x} gives away {_count(b, story.thing)}.", f"{x} has {calc} {_held(story)} left."


def _takes_away(story: _Story, b: int, rng: random.Random) -> tuple[str, str]:
    x, calc = story.holder, _annotated(story.value, "-", b)
    verb = rng.choice(_TAKE_AWAY_VERBS if story.thing[0] in ("apple", "cookie", "candy") else _TAKE_AWAY_VERBS[:2])
    story.value -= b
    story.ask = f"does {x} have now"
    return f"{x} {verb} {b} of the {story.thing[1]}.", f"So {x} has {calc} {_held(story)} now."


def _times_as_many(story: _Story, b: int, rng: random.Random) -> tuple[str, str] | None:
    if not story.free_names:
        return None
    other, x, calc = story.free_names.pop(), story.holder, _annotated(story.value, "*", b)
    story.holder, story.value = other, story.value * b
    story.ask = f"does {other} have"
    return f"{other} has {b} times as many {story.thing[1]} as {x}.", f"{other} has {calc} {_held(story)}."


def _trades_each(story: _Story, b: int, rng: random.Random) -> tuple[str, str]:
    x, old, calc = story.holder, story.thing, _annotated(story.value, "*", b)
    story.thing = rng.choice([thing for thing in _OBJECTS if thing != old])
    story.value *= b
    story.ask = f"does {x} get"
    return (
        f"{x} trades each {old[0]} for {_count(b, story.thing)}.",
        f"{x} gets {calc} {_held(story)}.",
    )


def _shares_equally(story: _Story, b: int, rng: random.Random) -> tuple[str, str] | None:
    if not story.free_names:
        return None
    friend, x, calc = story.free_names.pop(), story.holder, _annotated(story.value, "/", b)
    story.holder, story.value = friend, story.value // b
    story.ask = f"does {friend} get"
    return (
        f"{x} shares the {story.thing[1]} equally among {b} friends, and {friend} is one of them.",
        f"{friend} gets {calc} {_held(story)}.",
    )


def _keeps_one_pile(story: _Story, b: int, rng: random.Random) -> tuple[str, str]:
    x, calc = story.holder, _annotated(story.value, "/", b)
    story.value //= b
    story.ask = f"does {x} keep"
    return (
        f"{x} puts the {story.thing[1]} into {b} equal piles and keeps one pile.",
        f"{x} keeps {calc} {_held(story)}.",
    )


_TEMPLATES: dict[str, tuple[_Template, ...]] = {
    "+": (_buys_more, _is_given),
    "-": (_gives_away, _takes_away),
    "*": (_times_as_many, _trades_each),
    "/": (_shares_equally, _keeps_one_pile),
}


def _word_problem(rng: random.Random, difficulty: MathDifficulty, problem_id: str) -> Example:
    start, chain = _step_chain(rng, difficulty)
    names = list(_NAMES)
    rng.shuffle(names)
    story = _Story(holder=names.pop(), thing=rng.choice(_OBJECTS), value=start, free_names=names, ask="")
    question: list[str] = []
    reasoning: list[str] = []
    first_op, first_b = chain[0]
    if first_op == "*" and rng.random() < 0.5:
        # Opening that is itself a product: "a bags of b things".
        x, calc = story.holder, _annotated(start, "*", first_b)
        bags, each = _count(start, ("bag", "bags")), _count(first_b, story.thing)
        question.append(f"{x} buys {bags} of {story.thing[1]}, with {each} in each bag.")
        story.value, story.ask = start * first_b, f"does {x} have"
        reasoning.append(f"{x} buys {calc} {_held(story)}.")
        chain = chain[1:]
    else:
        question.append(f"{story.holder} {rng.choice(_START_VERBS)} {_count(start, story.thing)}.")
    for op, b in chain:
        templates = list(_TEMPLATES[op])
        rng.shuffle(templates)
        # Templates that need a new name give way to ones that do not once the names run out.
        rendered = next(r for template in templates if (r := template(story, b, rng)) is not None)
        question.append(rendered[0])
        reasoning.append(rendered[1])
    question.append(f"How many {story.thing[1]} {story.ask}?")
    return Example(
        id=problem_id,
        skill="word_problem",
        question=" ".join(question),
        reasoning="\n".join(reasoning),
        answer=str(story.value),
    )


# ---------------------------------------------------------------------------------------------------------------
# The reference solver: reads a question written in the grammar of the templates above and computes its answer,
# independently of any reasoning. One pattern per template (and per opening), each next to what it means; a
# question that strays from them is unreadable, never guessed at.

_NAME = r"[A-Z][a-z]+"
_WORD = r"[a-z]+"
_NUMBER = r"\d+"
_OPENINGS = (
    (re.compile(rf"(?P<x>{_NAME}) buys (?P<a>{_NUMBER}) bags? of (?P<things>{_WORD}), with (?P<b>{_NUMBER}) "
                rf"(?P<thing>{_WORD}) in each bag"), "bags"),
    (re.compile(rf"(?P<x>{_NAME}) (?:{'|'.join(_START_VERBS)}) (?P<a>{_NUMBER}) (?P<thing>{_WORD})"), "start"),
)
# (pattern, operation, who the holder is afterwards: "x" stays, "y" the sentence's other name)
_STEP_PATTERNS = (
    (re.compile(rf"Then (?P<x>{_NAME}) buys (?P<b>{_NUMBER}) more (?P<thing>{_WORD})"), "+", "x"),
    (re.compile(rf"(?P<y>{_NAME}) gives (?P<x>{_NAME}) (?P<b>{_NUMBER}) (?P<thing>{_WORD})"), "+", "x"),
    (re.compile(rf"(?P<x>{_NAME}) gives away (?P<b>{_NUMBER}) (?P<thing>{_WORD})"), "-", "x"),
    (re.compile(rf"(?P<x>{_NAME}) (?:{'|'.join(_TAKE_AWAY_VERBS)}) (?P<b>{_NUMBER}) of the (?P<thing>{_WORD})"),
     "-", "x"),
    (re.compile(rf"(?P<y>{_NAME}) has (?P<b>{_NUMBER}) times as many (?P<thing>{_WORD}) as (?P<x>{_NAME})"), "*",
     "y"),
    (re.compile(rf"(?P<x>{_NAME}) trades each (?P<thing>{_WORD}) for (?P<b>{_NUMBER}) (?P<new>{_WORD})"), "*", "x"),
    (re.compile(rf"(?P<x>{_NAME}) shares the (?P<thing>{_WORD}) equally among (?P<b>{_NUMBER}) friends, and "
                rf"(?P<y>{_NAME}) is one of them"), "/", "y"),
    (re.compile(rf"(?P<x>{_NAME}) puts the (?P<thing>{_WORD}) into (?P<b>{_NUMBER}) equal piles and keeps one "
                "pile"), "/", "x"),
)
_ASK_RE = re.compile(rf"How many (?P<thing>{_WORD}) does (?P<x>{_NAME}) (?:have now|have left|have|get|keep)\?")
_SENTENCE_RE = re.compile(r"[^.?]+[.?]")
_NOUN_FORMS = {form: singular for singular, plural in _OBJECTS for form in (singular, plural)}


@dataclass(frozen=True)
class WordProblemSolution:
    answer: Fraction
    steps: int  # computations the answer needs: the question's difficulty


def _object(word: str) -> str:
    if word not in _NOUN_FORMS:
        raise ValueError(f"unknown object {word!r}")
    return _NOUN_FORMS[word]


def solve_word_problem(question: str) -> WordProblemSolution:
    """The answer of a question in the templates' grammar; ValueError saying which sentence it cannot read, or why
    the story is impossible (more taken than held, an unequal share)."""
    sentences = [sentence.strip() for sentence in _SENTENCE_RE.findall(question)]
    if " ".join(sentences) != " ".join(question.split()):
        raise ValueError("text after the last sentence")
    if len(sentences) < 2:
        raise ValueError("expected an opening sentence, steps and a question")
    *story, ask = sentences
    opening = next(((match, kind) for pattern, kind in _OPENINGS
                    if (match := pattern.fullmatch(story[0].rstrip("."))) is not None), None)
    if opening is None or not story[0].endswith("."):
        raise ValueError(f"cannot read the opening {story[0]!r}")
    match, kind = opening
    holder, thing, value = match["x"], _object(match["thing"]), Fraction(int(match["a"]))
    steps = 0
    if kind == "bags":
        if _object(match["things"]) != thing:
            raise ValueError(f"the bags hold {match['things']}, not {match['thing']}")
        value, steps = value * int(match["b"]), 1
    for sentence in story[1:]:
        step = next(((found, op, after) for pattern, op, after in _STEP_PATTERNS
                     if sentence.endswith(".") and (found := pattern.fullmatch(sentence[:-1])) is not None), None)
        if step is None:
            raise ValueError(f"cannot read the step {sentence!r}")
        found, op, after = step
        if found["x"] != holder:
            raise ValueError(f"{sentence!r} is about {found['x']}, but {holder} holds the {thing}s")
        if _object(found["thing"]) != thing:
            raise ValueError(f"{sentence!r} is about {found['thing']}, but {holder} holds {thing}s")
        if "y" in found.groupdict() and found["y"] == holder:
            raise ValueError(f"{sentence!r} names {holder} twice")
        b = int(found["b"])
        if op == "+":
            value += b
        elif op == "-":
            if b > value:
                raise ValueError(f"{sentence!r} takes {b} of {value}")
            value -= b
        elif op == "*":
            value *= b
        else:
            if b == 0 or value % b:
                raise ValueError(f"{sentence!r} shares {value} into {b} unequal parts")
            value /= b
        if after == "y":
            holder = found["y"]
        if "new" in found.groupdict():
            thing = _object(found["new"])
        steps += 1
    asked = _ASK_RE.fullmatch(ask)
    if asked is None:
        raise ValueError(f"cannot read the question {ask!r}")
    if asked["x"] != holder or _object(asked["thing"]) != thing:
        raise ValueError(f"{ask!r} asks about {asked['x']}'s {asked['thing']}, but {holder} holds the {thing}s")
    if steps == 0:
        raise ValueError("no computation: nothing happens to the opening quantity")
    return WordProblemSolution(value, steps)


# ---------------------------------------------------------------------------------------------------------------
# Quantities a question states: numerals (also as a share for `25%`), fractions, and number words

_NUMERAL_RE = re.compile(r"(?<![\w.])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?!\d)|(?<![\w\d])\.\d+")
_PERCENT_RE = re.compile(r"\s*(?:%|percent\b)")
_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "thousand": 1000, "million": 1000000,
    "dozen": 12, "dozens": 12, "twice": 2, "double": 2, "pair": 2, "triple": 3, "thrice": 3,
}
# Words that state a divisor: "half" states 2 and 1/2.
_SHARE_WORDS = {"half": 2, "halves": 2, "third": 3, "thirds": 3, "quarter": 4, "quarters": 4, "fourth": 4,
                "fifth": 5, "tenth": 10}


def question_quantities(text: str) -> set[Fraction]:
    """Every quantity `text` states: `48`, `$1,000`, `2.5`, `25%` (25 and 1/4), `3/4` (3, 4 and 3/4), `twelve`,
    `a dozen`, `half` (2 and 1/2)."""
    quantities: set[Fraction] = set()
    for match in _NUMERAL_RE.finditer(text):
        value = Fraction(match[0].replace(",", ""))
        quantities.add(value)
        if _PERCENT_RE.match(text, match.end()):
            quantities.add(value / 100)
    for match in _FRACTION_RE.finditer(text):
        if int(match[2]):
            quantities.add(Fraction(int(match[1]), int(match[2])))
    for word in re.findall(r"[a-z]+", text.lower()):
        if word in _NUMBER_WORDS:
            quantities.add(Fraction(_NUMBER_WORDS[word]))
        elif word in _SHARE_WORDS:
            quantities |= {Fraction(_SHARE_WORDS[word]), Fraction(1, _SHARE_WORDS[word])}
    return quantities


def _problem_rngs(n: int, seed: int) -> Iterator[tuple[int, random.Random]]:
    # One rng per problem: asking for more problems leaves the first ones unchanged.
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    for i in range(n):
        yield i, random.Random(f"{seed}:{i}")


def generate_word_problems(
    n: int, difficulty: MathDifficulty, seed: int, id_prefix: str = "math"
) -> list[Example]:
    """`n` GSM8K-style word problems (skill "word_problem"), the same for the same seed."""
    return [_word_problem(rng, difficulty, f"{id_prefix}-{i:06d}") for i, rng in _problem_rngs(n, seed)]


def generate_arithmetic_drills(
    n: int, difficulty: MathDifficulty, seed: int, id_prefix: str = "arith"
) -> list[Example]:
    """`n` bare expressions (skill "arithmetic"), e.g. `Compute (7 + 3) * 2.`, solved left to right."""
    problems = []
    for i, rng in _problem_rngs(n, seed):
        start, chain = _step_chain(rng, difficulty)
        expression, top_op, value = str(start), "", start
        lines = []
        for op, b in chain:
            lines.append(_annotated(value, op, b))
            # Parentheses keep the written expression equal to the left-to-right chain.
            if op in ("*", "/") and top_op in ("+", "-"):
                expression = f"({expression})"
            expression, top_op, value = f"{expression} {op} {b}", op, _apply(op, value, b)
        problems.append(
            Example(
                id=f"{id_prefix}-{i:06d}",
                skill="arithmetic",
                question=f"Compute {expression}.",
                reasoning="\n".join(lines),
                answer=str(value),
            )
        )
    return problems


# ---------------------------------------------------------------------------------------------------------------
# Answers: extraction and comparison by value
#
# An answer is a number (`42`, `-3.5`, `1,000`, `$12`, `3/4`, `25%`) or a LaTeX expression (`\frac{1}{2}`,
# `2\sqrt{2}`, `\dfrac{\pi}{3}`, `x^{2}+1`). A small recursive-descent parser reads it into an expression tree,
# which is evaluated exactly (fractions) when it is rational arithmetic and numerically (mpmath, 40 significant
# digits, variables at three irrational points) otherwise. Nothing is `eval`ed. Not sympy: `sympy.parse_expr` evals
# its input, `sympy.parsing.latex` needs antlr4 4.11 where omegaconf pins 4.9, and sympy's automatic simplification
# can run for minutes on a 40-character answer (`\sqrt[7]{(x^{999}+y)^{999}}`); here every step is bounded.
#
# Conventions: `$`, `%` and degree signs are decorations and dropped (GSM8K writes "25%" answers as "25");
# `\text{..}` holding letters is a unit and dropped; a leading `x =` is dropped; odd roots of negative numbers are
# real (`\sqrt[3]{-8}` is -2); letters are variables, and a run of up to two letters is their product (`2xy`),
# while longer runs are words, not values. Out of scope, so never a match: tuples, intervals, sets, lists (any
# comma that is not a thousands separator), equations and inequalities, text answers, subscripts, functions other
# than square and n-th roots (`\sin`, `\log`, ...), `e` as Euler's number, `i` as the imaginary unit, `\infty`,
# factorials, and mixed numbers (`2\frac{1}{2}` is 2 x 1/2, as LaTeX math reads it).

_MAX_ANSWER_CHARS = 200
_MAX_EXPONENT = 1000
_MAX_BITS = 100_000  # on the size of any number met on the way, exact or numeric
_MATCH_DIGITS = 40
_MAX_VARIABLE_RUN = 2

_BOXED_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
_TEXT_RE = re.compile(r"\\(?:text|textrm|textbf|mbox|mathrm|mathbf)\s*\{([^{}]*)\}")
_RENAMED_RE = re.compile(r"\\(dfrac|tfrac|cdot|times|div)(?![a-zA-Z])")
_RENAMED = {"dfrac": r"\frac", "tfrac": r"\frac", "cdot": "*", "times": "*", "div": "/"}
_DROPPED_RE = re.compile(
    r"\\(?:left|right|displaystyle)(?![a-zA-Z])|\\!|\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|\\degree"
    r"|\\?[%$]|\\[()\[\]]|(?<=\d)\\,(?=\d{3}(?!\d))"  # the last: a thin space between thousands, `1\,000`
)
_SPACING_RE = re.compile(r"\\(?:[,;: ]|q?quad(?![a-zA-Z]))|~")
_ASSIGNMENT_RE = re.compile(r"\s*[a-zA-Z]\s*=(?!=)")
_TOKEN_RE = re.compile(
    r"\s*(?:(?P<number>\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d,])|\d+\.?\d*|\.\d+)|(?P<command>\\[a-zA-Z]+)"
    r"|(?P<word>[a-zA-Z]+)|(?P<symbol>[-+*/^(){}\[\]]))"
)
_CLOSING = {"(": ")", "{": "}", "[": "]"}

# An expression tree: ("num", Fraction), ("var", letter), ("pi",), ("neg", a), (op, a, b) for op in + - * / ^,
# and ("root", radicand, index).
_Node = tuple[Any, ...]
_TWO: _Node = ("num", Fraction(2))


def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}` (or `\\fbox{...}`) in `text`, nested braces included; None when there
    is none, or when its braces never close (a truncated answer is no answer)."""
    starts = [match.end() for match in _BOXED_RE.finditer(text)]
    if not starts:
        return None
    depth, position = 1, starts[-1]
    while position < len(text):
        char = text[position]
        if char == "\\":
            position += 2  # `\{` and `\}` are literal braces, not a group
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[starts[-1] : position].strip() or None
        position += 1
    return None


def _unit_or_number(match: re.Match[str]) -> str:
    # `\text{ cm}` is a unit and goes; `\mathbf{5}` is a number and stays.
    return "" if re.search(r"[a-zA-Z]", match[1]) else match[1]


def _normalise_answer(text: str) -> str:
    if "\\boxed" in text or "\\fbox" in text:
        text = last_boxed(text) or ""
    text = _TEXT_RE.sub(_unit_or_number, text.replace("\u2212", "-"))  # also a Unicode minus sign
    text = _RENAMED_RE.sub(lambda match: _RENAMED[match[1]], text)
    text = _DROPPED_RE.sub("", text.replace("{,}", ","))
    text = _SPACING_RE.sub(" ", text)
    if assignment := _ASSIGNMENT_RE.match(text):
        text = text[assignment.end() :]
    return text.strip().rstrip(".")


def _tokens(text: str) -> list[tuple[str, str]]:
    """(kind, text) tokens: number, command (`\\frac`), word (letters) or symbol."""
    tokens, position, text = [], 0, text.rstrip()
    while position < len(text):
        match = _TOKEN_RE.match(text, position)
        if match is None:
            raise ValueError(f"unexpected {text[position:]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match[kind]))
        position = match.end()
    return tokens


class _Parser:
    """Recursive descent over the tokens of a normalised answer, building its expression tree.

    sum := product (('+' | '-') product)*;  product := signed (('*' | '/') signed | power)*  (the second form is an
    implicit product: `2\\pi`, `3x`, `2(x+1)`);  signed := ('+' | '-') signed | power;  power := primary ('^' signed)?;
    primary := number | word | group | \\frac arg arg | \\sqrt ('[' sum ']')? arg | \\pi.
    """

    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.position = 0
        self.letters: set[str] = set()

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.position] if self.position < len(self.tokens) else ("end", "")

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token[0] == "end":
            raise ValueError("unexpected end")
        self.position += 1
        return token

    def expect(self, text: str) -> None:
        if self.take()[1] != text:
            raise ValueError(f"expected {text!r}")

    def parse(self) -> _Node:
        tree = self.sum()
        if self.peek()[0] != "end":
            raise ValueError(f"unexpected {self.peek()[1]!r}")
        return tree

    def sum(self) -> _Node:
        tree = self.product()
        while self.peek()[1] in ("+", "-"):
            tree = (self.take()[1], tree, self.product())
        return tree

    def product(self) -> _Node:
        tree = self.signed()
        while True:
            kind, text = self.peek()
            if text in ("*", "/"):
                tree = (self.take()[1], tree, self.signed())
            elif kind in ("word", "command") or text in _CLOSING:
                tree = ("*", tree, self.power())
            else:
                return tree

    def signed(self) -> _Node:
        if self.peek()[1] in ("+", "-"):
            sign = self.take()[1]
            tree = self.signed()
            return ("neg", tree) if sign == "-" else tree
        return self.power()

    def power(self) -> _Node:
        base = self.primary()
        if self.peek()[1] == "^":
            self.take()
            return ("^", base, self.signed())
        return base

    def primary(self) -> _Node:
        kind, text = self.take()
        if kind == "number":
            return ("num", Fraction(text.replace(",", "")))
        if text in _CLOSING:
            tree = self.sum()
            self.expect(_CLOSING[text])
            return tree
        if kind == "word":
            return self.word(text)
        if text == r"\frac":
            numerator = self.argument()
            return ("/", numerator, self.argument())
        if text == r"\sqrt":
            index = _TWO
            if self.peek()[1] == "[":
                self.take()
                index = self.sum()
                self.expect("]")
            return ("root", self.argument(), index)
        if text == r"\pi":
            return ("pi",)
        raise ValueError(f"{text!r} is not supported")

    def word(self, text: str) -> _Node:
        if text == "pi":
            return ("pi",)
        if text == "sqrt":
            return ("root", self.primary(), _TWO)
        if len(text) > _MAX_VARIABLE_RUN:
            raise ValueError(f"{text!r} is a word, not a value")
        self.letters.update(text)
        tree: _Node = ("var", text[0])
        for letter in text[1:]:
            tree = ("*", tree, ("var", letter))
        return tree

    def argument(self) -> _Node:
        """A LaTeX command argument: a braced group or a single character (`\\frac12` is 1/2)."""
        kind, text = self.peek()
        if kind in ("number", "word") and len(text) > 1:
            self.tokens[self.position : self.position + 1] = [(kind, text[0]), (kind, text[1:])]
        return self.primary()


def _bounded_fraction(value: Fraction) -> Fraction:
    if max(value.numerator.bit_length(), value.denominator.bit_length()) > _MAX_BITS:
        raise ValueError("number too large")
    return value


def _exact(tree: _Node) -> Fraction | None:
    """The exact value of rational arithmetic (+ - * / and whole powers of numbers); None for anything else."""
    op = tree[0]
    if op == "num":
        return tree[1]
    if op in ("var", "pi", "root"):
        return None
    args = [_exact(arg) for arg in tree[1:]]
    if any(arg is None for arg in args):
        return None
    if op == "neg":
        return -args[0]
    left, right = args
    if op == "+":
        return _bounded_fraction(left + right)
    if op == "-":
        return _bounded_fraction(left - right)
    if op == "*":
        return _bounded_fraction(left * right)
    if right == 0 and (op == "/" or left == 0):
        raise ValueError("division by zero")
    if op == "/":
        return _bounded_fraction(left / right)
    if right.denominator != 1:
        return None
    bits = max(left.numerator.bit_length(), left.denominator.bit_length())
    if abs(right) > _MAX_EXPONENT or bits * abs(right) > _MAX_BITS:
        raise ValueError("number too large")
    return _bounded_fraction(left ** int(right))


def _power(base: mpmath.mpc, exponent: mpmath.mpc) -> mpmath.mpc:
    """The principal value of base ** exponent, as exp(exponent log base), refused before it is computed when
    too large (mpmath's own power by a huge whole number takes forever)."""
    if base == 0:
        if mpmath.re(exponent) > 0:
            return mpmath.mpf(0)
        raise ValueError("division by zero")
    logarithm = exponent * mpmath.log(base)
    if abs(logarithm) > _MAX_BITS:
        raise ValueError("number too large")
    return mpmath.exp(logarithm)


def _numeric(tree: _Node, point: dict[str, mpmath.mpf]) -> mpmath.mpc:
    """The value of `tree` with its variables at `point`, at mpmath's current precision."""
    op = tree[0]
    if op == "num":
        return mpmath.mpf(tree[1].numerator) / tree[1].denominator
    if op == "var":
        return point[tree[1]]
    if op == "pi":
        return +mpmath.pi
    args = [_numeric(arg, point) for arg in tree[1:]]
    if op == "neg":
        value = -args[0]
    elif op == "+":
        value = args[0] + args[1]
    elif op == "-":
        value = args[0] - args[1]
    elif op == "*":
        value = args[0] * args[1]
    elif op == "/":
        if args[1] == 0:
            raise ValueError("division by zero")
        value = args[0] / args[1]
    elif op == "^":
        value = _power(args[0], args[1])
    else:
        radicand, index = args
        if index == 0:
            raise ValueError("zeroth root")
        odd_index = mpmath.im(index) == 0 and mpmath.re(index) % 2 == 1
        if odd_index and mpmath.im(radicand) == 0 and mpmath.re(radicand) < 0:
            value = -_power(-radicand, 1 / index)  # the real odd root, as school math reads it
        else:
            value = _power(radicand, 1 / index)
    if not mpmath.isfinite(value) or (value != 0 and abs(mpmath.log(abs(value), 2)) > _MAX_BITS):
        raise ValueError("number out of range")
    return value


@dataclass(frozen=True)
class _Answer:
    tree: _Node
    exact: Fraction | None
    letters: frozenset[str]


def _points(letters: frozenset[str]) -> list[dict[str, mpmath.mpf]]:
    """Where to evaluate: once without variables; else at three irrational points, so that a rational expression
    has no pole there and two different ones do not agree there."""
    ordered = sorted(letters)
    count = 3 if ordered else 1
    return [{x: mpmath.mpf(k + 2) / (j + 3) + mpmath.pi / (j + 7) for j, x in enumerate(ordered)} for k in range(count)]


_NUMERIC_ERRORS = (ValueError, TypeError, ArithmeticError, RecursionError)


def _answer_value(text: str) -> _Answer | None:
    """The parsed answer, checked to have a finite value; None when it is not a single value this parser reads."""
    if len(text) > _MAX_ANSWER_CHARS:
        return None
    try:
        parser = _Parser(_tokens(_normalise_answer(text)))
        tree = parser.parse()
        exact = _exact(tree)
        if exact is None:
            with mpmath.workdps(_MATCH_DIGITS + 20):
                _numeric(tree, _points(frozenset(parser.letters))[0])
    except _NUMERIC_ERRORS:
        return None
    return _Answer(tree, exact, frozenset(parser.letters))


def _values_equal(a: _Answer, b: _Answer) -> bool:
    if a.exact is not None and b.exact is not None:
        return a.exact == b.exact
    with mpmath.workdps(_MATCH_DIGITS + 20):
        tolerance = mpmath.mpf(10) ** -_MATCH_DIGITS
        for point in _points(a.letters | b.letters):
            value_a, value_b = _numeric(a.tree, point), _numeric(b.tree, point)
            if abs(value_a - value_b) > tolerance * max(1, abs(value_a), abs(value_b)):
                return False
    return True


def answers_match(predicted: str, expected: str) -> bool:
    """Whether two answers have the same value (see the conventions above): `0.5` and `\\frac{1}{2}`, `\\sqrt{8}` and
    `2\\sqrt{2}`, `1,000` and `1000`. False, never an exception, when either is not a value."""
    a, b = _answer_value(predicted), _answer_value(expected)
    if a is None or b is None:
        return False
    try:
        return _values_equal(a, b)
    except _NUMERIC_ERRORS:
        return False


def extract_answer(completion: str) -> str | None:
    """The final answer of a student completion: the first line after its first `####`.

    From that line: the last `\\boxed{...}` content if there is one; else its first word when that is a number (as
    GSM8K writes it: `#### 72 apples` gives `72`; commas, `$` and a final `.` dropped); else the whole line when
    it is a value (`#### 2 \\sqrt{2}`). None when there is no marker or no answer.
    """
    text = answer_text(completion)
    if text is None:
        return None
    line = text.split("\n", 1)[0].strip()
    if "\\boxed" in line or "\\fbox" in line:
        return last_boxed(line)
    words = line.split()
    if words and "\\" not in line and parse_number(words[0].rstrip(".")) is not None:
        return _normalise_number_text(words[0])
    line = line.rstrip(".")
    return line if line and _answer_value(line) is not None else None


# ---------------------------------------------------------------------------------------------------------------
# Real data: GSM8K and NuminaMath-style records


@dataclass(frozen=True)
class SkippedRow:
    where: str  # file:line, or the hub row
    reason: str


@dataclass(frozen=True)
class LoadedExamples:
    """What `read_examples` read: the examples, and the rows it skipped for lack of one comparable answer
    (NuminaMath-style rows only; a GSM8K row without its `####` number is an error)."""

    examples: list[Example]
    skipped: list[SkippedRow]


def split_gsm8k_answer(solution: str) -> tuple[str, str]:
    """(reasoning, final answer) of a GSM8K solution ending in `#### 72`; the answer without `,`, `$`, final `.`."""
    lines = solution.rstrip().split("\n")
    if not lines[-1].lstrip().startswith("####"):
        if any(line.lstrip().startswith("####") for line in lines):
            raise ValueError("text after the '#### <answer>' line; expected it to be the last line")
        raise ValueError("no '#### <answer>' line; expected the solution to end with '#### <number>'")
    raw_answer = lines[-1].lstrip()[4:].strip()
    if parse_number(raw_answer) is None:
        raise ValueError(f"final answer {raw_answer!r} after '####' is not a number")
    return "\n".join(lines[:-1]).strip(), _normalise_number_text(raw_answer)


def _string_fields(row: object, where: str, fields: tuple[str, ...]) -> dict:
    """`row`, checked to be an object whose `fields` are strings; errors name the row and the field."""
    expected = " and ".join(repr(field) for field in fields)
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected a JSON object with {expected}, got {type(row).__name__}")
    for field in fields:
        if field not in row:
            raise ValueError(f"{where}: missing field {field!r}; expected {expected}")
        if not isinstance(row[field], str):
            raise ValueError(f"{where}: field {field!r} must be a string, got {type(row[field]).__name__}")
    return row


def _gsm8k_record(row: object, where: str, example_id: str) -> Example:
    row = _string_fields(row, where, ("question", "answer"))
    try:
        reasoning, answer = split_gsm8k_answer(row["answer"])
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
    return Example(
        id=example_id, skill="word_problem", question=row["question"].strip(), reasoning=reasoning, answer=answer
    )


def _numina_record(row: object, where: str, example_id: str) -> Example | SkippedRow:
    """A NuminaMath-style row: `problem`, `solution` ending in `\\boxed{answer}`, optional `source` (the skill) and
    `messages` (unused). The reasoning is the whole solution, boxed answer included, as the data writes it."""
    row = _string_fields(row, where, ("problem", "solution"))
    source = row.get("source")
    if source is not None and not isinstance(source, str):
        raise ValueError(f"{where}: field 'source' must be a string, got {type(source).__name__}")
    problem, solution = row["problem"].strip(), row["solution"].strip()
    boxed = last_boxed(solution)
    if not problem:
        return SkippedRow(where, "empty problem")
    if boxed is None:
        return SkippedRow(where, "no complete \\boxed{...} answer in the solution")
    answer = " ".join(boxed.split())
    if _answer_value(answer) is None:
        return SkippedRow(where, f"boxed answer {answer!r} is not a single value")
    return Example(id=example_id, skill=source or "numinamath", question=problem, reasoning=solution, answer=answer)


_Record = Callable[[object, str, str], Example | SkippedRow]
# Format name (the id prefix) -> the fields that identify it and its record reader.
_FORMATS: dict[str, tuple[tuple[str, str], _Record]] = {
    "gsm8k": (("question", "answer"), _gsm8k_record),
    "numina": (("problem", "solution"), _numina_record),
}


def _record_format(row: object, where: str) -> str:
    if isinstance(row, dict):
        for name, (fields, _) in _FORMATS.items():
            if all(field in row for field in fields):
                return name
    found = sorted(row) if isinstance(row, dict) else type(row).__name__
    raise ValueError(
        f"{where}: cannot tell the record format from {found}; expected fields 'question' and 'answer' (GSM8K) "
        "or 'problem' and 'solution' (NuminaMath)"
    )


def _source_rows(source: str, split: str) -> Iterator[tuple[int, object, str]]:
    """(index, row, where) of a `.jsonl` file, a directory holding `{split}.jsonl`, or a hub dataset's split."""
    path = Path(source)
    if path.is_dir():
        path = path / f"{split}.jsonl"
        if not path.is_file():
            raise FileNotFoundError(f"math split file not found: {path}")
    if path.is_file():
        yield from ((number - 1, row, f"{path}:{number}") for number, row in jsonl_rows(path))
    elif looks_like_hub_id(source):
        from datasets import get_dataset_config_names, load_dataset

        # GSM8K's hub copy has the configs "main" and "socratic"; NuminaMath's has one, the default.
        config = "main" if "main" in get_dataset_config_names(source) else None
        dataset = load_dataset(source, config, split=split)
        yield from ((index, row, f"{source}[{split}] row {index}") for index, row in enumerate(dataset))
    else:
        raise FileNotFoundError(f"math source not found: {source} (neither a file, a directory nor a hub id)")


def _read(source: str, split: str, limit: int | None, format_name: str | None) -> LoadedExamples:
    """Up to `limit` examples of `source`, in the given format or (None) the one its first row shows."""
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, got {limit}")
    examples: list[Example] = []
    skipped: list[SkippedRow] = []
    for index, row, where in _source_rows(source, split):
        if limit is not None and len(examples) >= limit:
            break
        format_name = format_name or _record_format(row, where)
        record = _FORMATS[format_name][1](row, where, f"{format_name}-{split}-{index}")
        (skipped if isinstance(record, SkippedRow) else examples).append(record)
    return LoadedExamples(examples, skipped)


def load_gsm8k(source: str, split: str = "train", limit: int | None = None) -> list[Example]:
    """GSM8K records from a `.jsonl` file, a directory holding `{split}.jsonl`, or a hub id (e.g. `openai/gsm8k`).

    Ids are `gsm8k-{split}-{index}` (index of the line or row, from 0); for a file path, `split` names the ids.
    """
    return _read(source, split, limit, "gsm8k").examples


def read_examples(source: str, split: str = "train", limit: int | None = None) -> LoadedExamples:
    """GSM8K or NuminaMath-style records (told apart by the first row's fields) from a `.jsonl` file, a directory
    holding `{split}.jsonl`, or a hub id (`openai/gsm8k`, `AI-MO/NuminaMath-CoT`). Malformed rows (not an object,
    missing fields, wrong types) raise naming file and line; NuminaMath rows without one comparable `\\boxed{}`
    answer, which the real data has, are skipped and listed. Ids are `{gsm8k|numina}-{split}-{index}`."""
    return _read(source, split, limit, None)


def load_examples(source: str, split: str = "train", limit: int | None = None) -> list[Example]:
    """`read_examples`' examples; skipped rows are counted in a logged warning."""
    loaded = read_examples(source, split, limit)
    if loaded.skipped:
        first = loaded.skipped[0]
        _log.warning(
            "%s [%s]: skipped %d rows without a problem and one comparable \\boxed{} answer (first, %s: %s); "
            "read_examples lists them",
            source, split, len(loaded.skipped), first.where, first.reason,
        )
    return loaded.examples


# ---------------------------------------------------------------------------------------------------------------
# The domain contract (the names every domain module exposes)

NAME = "math"


def difficulty(question: str, reasoning: str) -> str | None:
    """A sample's difficulty: its number of computation steps (calculator annotations); None without any."""
    steps = reasoning.count("<<")
    return f"{steps} steps" if steps else None


GENERATOR_INSTRUCTION = "Write a new grade-school math problem like this example."
# Draws beyond n allowed to find n distinct questions before the difficulty is judged too narrow.
_MAX_DRAWS_PER_EXAMPLE = 16


def procedural_examples(n: int, seed: int, difficulty: MathDifficulty | None = None) -> list[Example]:
    """`n` word problems with distinct questions (the first ones of `generate_word_problems`), the same for the same
    seed; ValueError when the difficulty cannot give that many distinct questions."""
    difficulty = difficulty or MathDifficulty()
    draws = n
    while True:
        examples = unique_questions(generate_word_problems(draws, difficulty, seed))
        if len(examples) >= n:
            return examples[:n]
        if draws >= _MAX_DRAWS_PER_EXAMPLE * n:
            raise ValueError(
                f"only {len(examples)} distinct questions in {draws} word problems from {difficulty}; {n} needed: "
                "widen the difficulty"
            )
        draws = min(2 * draws, _MAX_DRAWS_PER_EXAMPLE * n)


# ---------------------------------------------------------------------------------------------------------------
# Verification and grading (the domain interface; see acqsynth.domains)


def verify(questions: list[str], reasonings: list[str], answers: list[str], rules: VerifyRules) -> list[Verdict]:
    from acqsynth.verify.math import verify_batch

    return verify_batch(questions, reasonings, answers, rules.math)


def grade(predicted: list[str | None], examples: pd.DataFrame, workers: int = 1,
          missing_layers: MissingLayers = "refuse") -> list[bool]:
    """Whether each predicted answer equals its example's answer in value."""
    return graded_by_answer(answers_match, predicted, list(examples["answer"]))
