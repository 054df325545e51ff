"""Math answers: numbers as GSM8K writes them, the quantities a question states, and answers extracted from a
completion and compared by value (numbers and LaTeX expressions), with no `eval` and every step bounded."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import mpmath

from acqsynth.domains.sample import answer_text

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


def normalise_number_text(text: str) -> str:
    """Drop the decorations GSM8K and models put on numbers: thousands commas, `$`, a trailing full stop."""
    return text.strip().replace(",", "").replace("$", "").rstrip(".")




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


def is_value(text: str) -> bool:
    """Whether `text` is one value that answers are compared by (a number or a LaTeX expression in scope)."""
    return _answer_value(text) is not None


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
        return normalise_number_text(words[0])
    line = line.rstrip(".")
    return line if line and _answer_value(line) is not None else None


