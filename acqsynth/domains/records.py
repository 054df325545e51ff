"""Reading real data sets, shared by the domains' loaders: JSON lines (plain or gzipped) with errors that name the
file and line, and telling a hub id from a local path."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from pathlib import Path

_LOCAL_SUFFIXES = (".json", ".jsonl", ".gz", ".parquet")


def looks_like_hub_id(source: str) -> bool:
    """"openai/gsm8k" or "mbpp"; anything path-like (a data-file suffix, a leading . or /, an existing first
    folder) is local."""
    if not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", source) or source.endswith(_LOCAL_SUFFIXES) or source.startswith("."):
        return False
    return not Path(Path(source).parts[0]).exists()


def jsonl_rows(path: Path) -> Iterator[tuple[int, object]]:
    """(1-based line number, parsed object) of every non-blank line of a `.jsonl` or `.jsonl.gz` file."""
    data = path.read_bytes()
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as error:
            raise ValueError(f"{path}: not a valid gzip file ({error})") from None
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
                f"{path}:{number}: invalid JSON ({error.msg} at column {error.colno}); expected one object per line"
            ) from None
