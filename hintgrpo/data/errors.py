"""Bad input is reported with its file, row and field; skipping it is opt-in and always counted."""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)


class DataError(ValueError):
    """A row that cannot become a sample, located by file, row and field."""

    def __init__(self, file: str | Path, row: int | str | None, field_name: str | None, message: str):
        self.file, self.row, self.field = str(file), row, field_name
        where = f"{self.file}"
        if row is not None:
            where += f", row {row}"
        if field_name is not None:
            where += f", field {field_name!r}"
        super().__init__(f"{where}: {message}")


@dataclass
class RowGuard:
    """Raises on the first bad row, or with `skip_bad_rows` counts it (by reason) and lets the loader go on."""

    file: str | Path
    skip_bad_rows: bool = False
    skipped: Counter = field(default_factory=Counter)
    rejected_rows: set = field(default_factory=set)
    first_rows: dict = field(default_factory=dict)  # sample id -> (row, label) of the row that kept it

    def reject(self, row: int | str | None, field_name: str | None, message: str) -> None:
        error = DataError(self.file, row, field_name, message)
        if not self.skip_bad_rows:
            raise error
        if row is not None and row in self.rejected_rows:
            return  # a row with several problems is skipped, and counted, once (for its first problem)
        self.rejected_rows.add(row)
        self.skipped[f"{field_name}: {message}"] += 1
        logger.warning("skipping %s", error)

    def decodes(self, row: int | str, fields: dict) -> bool:
        """Whether every field is free of U+FFFD, which the readers put where a byte was not UTF-8 (else rejects)."""
        for field_name, value in fields.items():
            if "\ufffd" in str(value):
                self.reject(row, field_name, "contains U+FFFD: the file was not valid UTF-8")
                return False
        return True

    def text(self, row: int | str, field_name: str, value) -> str | None:
        """A non-empty string, or None after rejecting the row."""
        if not isinstance(value, str) or not value.strip():
            self.reject(row, field_name, f"missing or empty text ({value!r})")
            return None
        return value.strip()

    def number(self, row: int | str, field_name: str, value, low: float, high: float) -> float | None:
        """A finite float in [low, high], or None after rejecting the row."""
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.reject(row, field_name, f"not a number ({value!r})")
            return None
        if not math.isfinite(number):
            self.reject(row, field_name, f"not a finite number ({value!r})")
            return None
        if not low <= number <= high:
            self.reject(row, field_name, f"{number} is outside [{low:g}, {high:g}]")
            return None
        return number

    def choice(self, row: int | str, field_name: str, value, allowed) -> str | None:
        if value not in allowed:
            self.reject(row, field_name, f"{value!r} is not one of {sorted(allowed)}")
            return None
        return value

    def unique(self, row: int | str, field_name: str, sample_id: str, label) -> bool:
        """Whether no earlier row kept `sample_id` (else rejects); call it last, once the row is known to be good."""
        if sample_id not in self.first_rows:
            self.first_rows[sample_id] = (row, label)
            return True
        first_row, first_label = self.first_rows[sample_id]
        conflict = f", with a different label ({first_label!r} there, {label!r} here)" if label != first_label else ""
        self.reject(row, field_name, f"id {sample_id!r} is already the id of row {first_row}{conflict}")
        return False

    def report(self) -> None:
        total = sum(self.skipped.values())
        if total:
            reasons = "; ".join(f"{count} × {reason}" for reason, count in self.skipped.most_common())
            logger.warning("%s: skipped %d bad rows (%s)", self.file, total, reasons)


def require_columns(file: str | Path, columns, required) -> None:
    missing = [name for name in required if name not in columns]
    if missing:
        raise DataError(file, None, missing[0], f"missing column(s) {missing}; found {list(columns)}")


def require_unique_ids(source: str | Path, ids) -> None:
    """Raises on the first id that an earlier row already has (for rows that no loader checked)."""
    guard = RowGuard(source)
    for row, sample_id in enumerate(ids):
        guard.unique(row, "id", sample_id, None)
