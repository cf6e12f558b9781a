"""Append-only JSONL record files that survive being killed mid-write."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from hintgrpo.data.errors import DataError

logger = logging.getLogger(__name__)


def read_records(path: Path, repair: bool = True) -> list[dict]:
    """Records written so far.

    A last line cut short by a kill (invalid JSON, or no newline yet) is not a record: with `repair` it is
    cut from the file, so the run that resumes appends after the last whole record and redoes that one.
    A bad line with records after it is not a kill's trace but damage, and raises rather than losing them.
    """
    if not path.is_file():
        return []
    with open(path, "rb") as handle:
        lines = handle.readlines()
    records, kept_bytes = [], 0
    for number, line in enumerate(lines, start=1):
        try:
            if not line.endswith(b"\n"):
                raise ValueError("no newline")
            records.append(json.loads(line))
        except ValueError as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            if number < len(lines):
                raise DataError(
                    path,
                    number,
                    None,
                    f"not a JSON record ({error}); records follow it, so the file is damaged, "
                    "not cut short by a kill: fix or remove that line",
                ) from error
            break
        kept_bytes += len(line)
    if repair and kept_bytes < path.stat().st_size:
        logger.warning("%s: dropping an incomplete last record; it will be generated again", path)
        with open(path, "r+b") as handle:
            handle.truncate(kept_bytes)
    return records


def write_jsonl(path: Path, records: list[dict]) -> None:
    """Replace `path` with `records`, written beside it and renamed so a kill never leaves a half file."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="utf-8") as handle:
        handle.writelines(json.dumps(record) + "\n" for record in records)
    partial.replace(path)
