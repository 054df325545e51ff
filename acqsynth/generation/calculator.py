"""GSM8K's calculator during sampling (Cobbe et al., 2021): when a sequence has just written `<<expression=` inside
a calculator annotation, the tokens of the expression's exact value and the closing `>>` are forced, so the
arithmetic a math sample states is right and the model writes the rest. An expression the safe evaluator refuses is
left to the model (verification then judges it)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

_OPEN_ANNOTATION = re.compile(r"<<([^<>=]{1,200})=$")
_TAIL_TOKENS = 48  # enough to hold an open annotation's expression


def calculator_result(text: str) -> str | None:
    """The text to force after `text`: the value of the annotation it ends inside, and `>>`; None otherwise."""
    from acqsynth.domains.math.answers import format_number
    from acqsynth.verify.math import evaluate_expression

    match = _OPEN_ANNOTATION.search(text)
    if match is None:
        return None
    try:
        return f"{format_number(evaluate_expression(match.group(1)))}>>"
    except (ValueError, ZeroDivisionError, OverflowError):
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
                if not tail.endswith("=") or (result := calculator_result(tail)) is None:
                    continue
                queue = self.forced[row] = self.tokenizer.encode(result, add_special_tokens=False)
            token = queue.pop(0)
            scores[row, :] = float("-inf")
            scores[row, token] = 0.0
        return scores
