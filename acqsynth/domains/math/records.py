"""Real math data: GSM8K and NuminaMath-style records from a `.jsonl` file, a directory or a hub id, read into
`Example`s. For GSM8K an example's `reasoning` is the worked solution without the final `#### answer` line."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from acqsynth.domains.math.answers import is_value, last_boxed, normalise_number_text, parse_number
from acqsynth.domains.records import jsonl_rows, looks_like_hub_id
from acqsynth.domains.sample import Example

_log = logging.getLogger(__name__)

def gsm8k_solution(problem: Example) -> str:
    """The GSM8K `answer` field: worked solution, then the `#### answer` line."""
    return f"{problem.reasoning}\n#### {problem.answer}"




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
    return "\n".join(lines[:-1]).strip(), normalise_number_text(raw_answer)


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
    if not is_value(answer):
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


