"""The calculator during sampling, for the domains whose samples state values a small generator cannot compute
reliably (each domain module says whether it uses it: `SAMPLED_WITH_CALCULATOR`):

- math, GSM8K's calculator (Cobbe et al., 2021): when a sequence has just written `<<expression=` inside a
  calculator annotation, the tokens of the expression's exact value and the closing `>>` are forced;
- code: when a sequence has just written `assert name(arguments) ==` and `name` is a procedural task's function
  (`add_3`, `keep_over_4_then_sum`: `acqsynth.domains.code.procedural_function`), the tokens of the value that
  function gives for those arguments are forced.

So the values a sample states are right and the model writes the rest. An expression or call that cannot be
evaluated is left to the model (verification then judges it)."""

from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

_OPEN_ANNOTATION = re.compile(r"<<([^<>=]{1,200})=$")
_OPEN_ASSERT = re.compile(r"assert ([A-Za-z_]\w*)\(([^\n]{0,200})\) ==( ?)$")
_TAIL_TOKENS = 64  # enough to hold an open annotation's expression, or an assert's call
_MAX_VALUE_CHARACTERS = 200


def _annotation_value(expression: str) -> str | None:
    from acqsynth.domains.math.answers import format_number
    from acqsynth.verify.math import evaluate_expression

    try:
        return f"{format_number(evaluate_expression(expression))}>>"
    except (ValueError, ZeroDivisionError, OverflowError):
        return None


def _test_value(name: str, arguments: str) -> str | None:
    from acqsynth.domains.code import procedural_function

    function = procedural_function(name)
    if function is None:
        return None
    try:
        value = repr(function(*ast.literal_eval(f"({arguments},)")))
    except Exception:  # noqa: BLE001 - a call the function refuses (wrong types, a malformed literal) is the model's
        return None
    return value if len(value) <= _MAX_VALUE_CHARACTERS else None


def calculator_result(text: str) -> str | None:
    """The text to force after `text`: the value of the annotation or test call it ends inside; None otherwise."""
    if match := _OPEN_ANNOTATION.search(text):
        return _annotation_value(match[1])
    if match := _OPEN_ASSERT.search(text):
        value = _test_value(match[1], match[2])
        return None if value is None else ("" if match[3] else " ") + value
    return None


class CalculatorLogitsProcessor:
    """A transformers logits processor (one per `generate` call: it keeps each row's forced tokens)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.tokenizer = tokenizer
        self.forced: dict[int, list[int]] = {}

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        for row in range(input_ids.shape[0]):
            queue = self.forced.get(row)
            if not queue:
                tail = self.tokenizer.decode(input_ids[row, -_TAIL_TOKENS:], skip_special_tokens=True)
                if not tail.endswith(("=", "= ")) or (result := calculator_result(tail)) is None:
                    continue
                queue = self.forced[row] = self.tokenizer.encode(result, add_special_tokens=False)
            token = queue.pop(0)
            scores[row, :] = float("-inf")
            scores[row, token] = 0.0
        return scores
