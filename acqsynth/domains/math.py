"""Math domain: GSM8K-format word problems (procedural and real), the sample format, student prompts, numbers.

A record is a `MathProblem`; its `reasoning` is a GSM8K worked solution without the final `#### answer` line,
with one calculator annotation `<<a op b=c>>` per step so that `acqsynth.verify.math` can check every step.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

OPERATIONS = ("+", "-", "*", "/")


@dataclass(frozen=True)
class MathProblem:
    id: str
    skill: str
    question: str
    reasoning: str
    answer: str


def gsm8k_solution(problem: MathProblem) -> str:
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


def numbers_equal(a: str, b: str) -> bool:
    """Exact equality by value (`8` == `8.00`, `1,000` == `1000`); False when either is not a number."""
    value_a, value_b = parse_number(a), parse_number(b)
    return value_a is not None and value_b is not None and value_a == value_b


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


def _word_problem(rng: random.Random, difficulty: MathDifficulty, problem_id: str) -> MathProblem:
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
    return MathProblem(
        id=problem_id,
        skill="word_problem",
        question=" ".join(question),
        reasoning="\n".join(reasoning),
        answer=str(story.value),
    )


def _problem_rngs(n: int, seed: int) -> Iterator[tuple[int, random.Random]]:
    # One rng per problem: asking for more problems leaves the first ones unchanged.
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    for i in range(n):
        yield i, random.Random(f"{seed}:{i}")


def generate_word_problems(
    n: int, difficulty: MathDifficulty, seed: int, id_prefix: str = "math"
) -> list[MathProblem]:
    """`n` GSM8K-style word problems (skill "word_problem"), the same for the same seed."""
    return [_word_problem(rng, difficulty, f"{id_prefix}-{i:06d}") for i, rng in _problem_rngs(n, seed)]


def generate_arithmetic_drills(
    n: int, difficulty: MathDifficulty, seed: int, id_prefix: str = "arith"
) -> list[MathProblem]:
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
            MathProblem(
                id=f"{id_prefix}-{i:06d}",
                skill="arithmetic",
                question=f"Compute {expression}.",
                reasoning="\n".join(lines),
                answer=str(value),
            )
        )
    return problems


# ---------------------------------------------------------------------------------------------------------------
# Real GSM8K


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


def _gsm8k_record(row: object, where: str, problem_id: str) -> MathProblem:
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected a JSON object with 'question' and 'answer', got {type(row).__name__}")
    for field in ("question", "answer"):
        if field not in row:
            raise ValueError(f"{where}: missing field {field!r}; expected 'question' and 'answer'")
        if not isinstance(row[field], str):
            raise ValueError(f"{where}: field {field!r} must be a string, got {type(row[field]).__name__}")
    try:
        reasoning, answer = split_gsm8k_answer(row["answer"])
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
    return MathProblem(
        id=problem_id, skill="word_problem", question=row["question"].strip(), reasoning=reasoning, answer=answer
    )


def _jsonl_rows(path: Path) -> Iterator[tuple[int, object]]:
    """(1-based line number, parsed object) of every non-blank line, with errors naming file and line."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ValueError(f"{path}:{line}: not valid UTF-8 (byte {error.start}); expected UTF-8 JSON lines") from None
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{path}:{number}: invalid JSON ({error.msg} at column {error.colno}); "
                "expected one object with 'question' and 'answer' per line"
            ) from None


def _looks_like_hub_id(source: str) -> bool:
    # "openai/gsm8k" or "gsm8k"; anything path-like (a suffix, a leading ./ or /, an existing first folder) is local.
    if not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", source) or source.endswith(".jsonl") or source.startswith("."):
        return False
    return not Path(Path(source).parts[0]).exists()


def load_gsm8k(source: str, split: str = "train", limit: int | None = None) -> list[MathProblem]:
    """GSM8K records from a `.jsonl` file, a directory holding `{split}.jsonl`, or a hub id (e.g. `openai/gsm8k`).

    Ids are `gsm8k-{split}-{index}` (index of the line or row, from 0); for a file path, `split` names the ids.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, got {limit}")
    path = Path(source)
    rows: Iterable[tuple[int, object, str]]
    if path.is_dir():
        path = path / f"{split}.jsonl"
        if not path.is_file():
            raise FileNotFoundError(f"GSM8K split file not found: {path}")
    if path.is_file():
        rows = ((number - 1, row, f"{path}:{number}") for number, row in _jsonl_rows(path))
    elif _looks_like_hub_id(source):
        from datasets import load_dataset

        dataset = load_dataset(source, "main", split=split)
        rows = ((index, row, f"{source}[{split}] row {index}") for index, row in enumerate(dataset))
    else:
        raise FileNotFoundError(f"GSM8K source not found: {source} (neither a file, a directory nor a hub id)")
    problems = []
    for index, row, where in rows:
        if limit is not None and len(problems) >= limit:
            break
        problems.append(_gsm8k_record(row, where, f"gsm8k-{split}-{index}"))
    return problems


# ---------------------------------------------------------------------------------------------------------------
# The method's sample format

_TAGS = ("<question>", "</question>", "<reasoning>", "</reasoning>", "<answer>", "</answer>")


@dataclass(frozen=True)
class ParsedSample:
    ok: bool
    question: str | None
    reasoning: str | None
    answer: str | None
    error: str


def format_sample(question: str, reasoning: str, answer: str) -> str:
    return f"<question>{question}</question><reasoning>{reasoning}</reasoning><answer>{answer}</answer>"


def _failed(error: str) -> ParsedSample:
    return ParsedSample(ok=False, question=None, reasoning=None, answer=None, error=error)


def parse_sample(text: str) -> ParsedSample:
    """Split `<question>..</question><reasoning>..</reasoning><answer>..</answer>`; each tag exactly once, in order."""
    for tag in _TAGS:
        count = text.count(tag)
        if count == 0:
            return _failed(f"missing {tag}")
        if count > 1:
            return _failed(f"more than one {tag}")
    positions = [text.index(tag) for tag in _TAGS]
    if positions != sorted(positions):
        return _failed("tags out of order")
    ends = [position + len(tag) for position, tag in zip(positions, _TAGS)]
    outside = {
        "text before <question>": text[: positions[0]],
        "text between </question> and <reasoning>": text[ends[1] : positions[2]],
        "text between </reasoning> and <answer>": text[ends[3] : positions[4]],
        "text after </answer>": text[ends[5] :],
    }
    for error, stray in outside.items():
        if stray.strip():
            return _failed(error)
    fields = [text[ends[i] : positions[i + 1]].strip() for i in (0, 2, 4)]
    for name, value in zip(("question", "reasoning", "answer"), fields):
        if not value:
            return _failed(f"empty {name}")
    return ParsedSample(ok=True, question=fields[0], reasoning=fields[1], answer=fields[2], error="")


def format_score(text: str) -> float:
    """1.0 for a parseable sample; otherwise 0.9 x the fraction of the six tags found in order (a graded signal)."""
    if parse_sample(text).ok:
        return 1.0
    found, position = 0, 0
    for tag in _TAGS:
        index = text.find(tag, position)
        if index >= 0:
            found, position = found + 1, index + len(tag)
    return 0.9 * found / len(_TAGS)


def generator_prompt(question: str, reasoning: str, answer: str) -> str:
    """The generator's prompt: one seed example, in the method's order (question, reasoning, answer)."""
    return ("Write a new grade-school math problem like this example.\n"
            f"{format_sample(question, reasoning, answer)}\nNew:\n")


# ---------------------------------------------------------------------------------------------------------------
# Student prompt format


def student_prompt(question: str) -> str:
    return f"Question: {question}\nAnswer:"


def student_completion(reasoning: str, answer: str) -> str:
    return f" {reasoning}\n#### {answer}"


def extract_final_answer(text: str) -> str | None:
    """The number right after the first `####` (commas, `$`, a final `.` dropped); None if absent or not a number."""
    marker = text.find("####")
    if marker < 0:
        return None
    tokens = text[marker + 4 :].split("\n", 1)[0].split()
    if not tokens or parse_number(tokens[0].rstrip(".")) is None:
        return None
    return _normalise_number_text(tokens[0])
