"""Procedural GSM8K-style word problems: the difficulty, the templates that write a problem step by step (each
step with its calculator annotation `<<a op b=c>>`), and the reference solver that reads a question in the grammar
of those templates and computes its answer independently of any reasoning."""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction

from acqsynth.domains.sample import Example, unique_questions

OPERATIONS = ("+", "-", "*", "/")


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
