"""Any task from your own files: JSON lines (`.jsonl`, one object per line) or `.csv` with a text and a label field.

`load_generic(path, task)` reads one file. `register_generic_dataset(dataset)` makes `load_task_dataset` read
`<data_dir>/<dataset>/{split}.jsonl` (or `{split}.csv`) for every task whose `dataset` is that folder.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from datasets import Dataset

from hintgrpo.data.errors import RowGuard, require_columns
from hintgrpo.data.loaders import LOADERS, Loader, make_sample, read_csv_records, register_loader
from hintgrpo.tasks import TaskSpec, get_task

logger = logging.getLogger(__name__)

GENERIC_SUFFIXES = (".jsonl", ".csv")


def is_json_object(line: str) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except json.JSONDecodeError:
        return False


def read_jsonl_records(path: Path, guard: RowGuard, still_written: bool = False) -> list[tuple[int, dict]]:
    """(line number, object) for each non-blank line; a line that is not a JSON object goes to `guard`.

    With `still_written`, a last line without its newline may be a record being appended as the file is read: it
    is kept when it is a whole JSON object (a file that merely lacks its final newline), else skipped with a warning.
    """
    records = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line_number, line in enumerate(handle, start=1):
            if still_written and not line.endswith("\n") and not is_json_object(line):
                logger.warning("%s: line %d is not a whole record yet (being written?): skipped", path, line_number)
                break
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                guard.reject(line_number, None, f"not valid JSON ({error.msg} at column {error.colno})")
                continue
            if not isinstance(record, dict):
                guard.reject(line_number, None, f"expected a JSON object, got {type(record).__name__}")
                continue
            records.append((line_number, record))
    return records


def generic_label(guard: RowGuard, row: int, field_name: str, value, task: TaskSpec):
    """A score in task.score_range (regression) or one of task.labels, case and surrounding blanks ignored."""
    if task.is_regression:
        if isinstance(value, bool):
            guard.reject(row, field_name, f"not a number ({value!r})")
            return None
        return guard.number(row, field_name, value, *task.score_range)
    return guard.choice(row, field_name, value.strip().lower() if isinstance(value, str) else value, task.labels)


def generic_context(guard: RowGuard, row: int, field_name: str, value) -> str | None:
    """A string, or a list of turns joined by newlines; missing is ""."""
    if value is None:
        return ""
    if isinstance(value, list) and all(isinstance(turn, str) for turn in value):
        return "\n".join(turn.strip() for turn in value)
    if isinstance(value, str):
        return value.strip()
    guard.reject(row, field_name, f"expected a string or a list of strings, got {type(value).__name__}")
    return None


def read_generic_rows(
    path: str | Path,
    task: TaskSpec | str,
    *,
    text_field: str = "text",
    label_field: str = "label",
    id_field: str = "id",
    context_field: str | None = None,
    skip_bad_rows: bool = False,
) -> list[dict]:
    """Samples (see loaders.make_sample) of a `.jsonl` or `.csv` file; rows are numbered from 1 (JSONL: lines)."""
    path, task = Path(path), get_task(task) if isinstance(task, str) else task
    if path.suffix not in GENERIC_SUFFIXES:
        raise ValueError(f"{path}: expected a file ending in {' or '.join(GENERIC_SUFFIXES)}")
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    guard, rows = RowGuard(path, skip_bad_rows), []
    if path.suffix == ".csv":
        columns, csv_records = read_csv_records(path)
        require_columns(path, columns, [text_field, label_field] + ([context_field] if context_field else []))
        records = list(enumerate(csv_records, start=1))
    else:
        records = read_jsonl_records(path, guard)
    for row, record in records:
        if not guard.decodes(row, record):
            continue
        text = guard.text(row, text_field, record.get(text_field))
        label = generic_label(guard, row, label_field, record.get(label_field), task)
        context = generic_context(guard, row, context_field, record.get(context_field)) if context_field else ""
        if text is None or label is None or context is None:
            continue
        sample_id = record.get(id_field)
        if sample_id is None or not str(sample_id).strip():
            sample_id = f"{path.stem}_{row}"
        sample_id = str(sample_id).strip()
        if guard.unique(row, id_field, sample_id, label):
            rows.append(make_sample(task, sample_id, text, label, context))
    guard.report()
    return rows


def load_generic(
    path: str | Path,
    task: TaskSpec | str,
    *,
    text_field: str = "text",
    label_field: str = "label",
    id_field: str = "id",
    context_field: str | None = None,
    skip_bad_rows: bool = False,
) -> Dataset:
    """A `.jsonl` or `.csv` file as a Dataset of samples for `task`, labels checked against the task."""
    rows = read_generic_rows(
        path,
        task,
        text_field=text_field,
        label_field=label_field,
        id_field=id_field,
        context_field=context_field,
        skip_bad_rows=skip_bad_rows,
    )
    if not rows:
        raise ValueError(f"{path}: no rows loaded")
    return Dataset.from_list(rows)


def register_generic_dataset(
    dataset: str,
    *,
    text_field: str = "text",
    label_field: str = "label",
    id_field: str = "id",
    context_field: str | None = None,
) -> Loader:
    """Register a loader reading `<data_dir>/<dataset>/{split}.jsonl`, else `{split}.csv`, for `load_task_dataset`."""
    if dataset in LOADERS:
        raise ValueError(f"dataset {dataset!r} already has a loader")

    def load(data_dir: Path, split: str, task: TaskSpec, skip_bad_rows: bool) -> list[dict]:
        folder = data_dir / dataset
        for suffix in GENERIC_SUFFIXES:
            if (folder / f"{split}{suffix}").is_file():
                return read_generic_rows(
                    folder / f"{split}{suffix}",
                    task,
                    text_field=text_field,
                    label_field=label_field,
                    id_field=id_field,
                    context_field=context_field,
                    skip_bad_rows=skip_bad_rows,
                )
        raise FileNotFoundError(
            f"{folder}/{split}.jsonl (or {split}.csv) not found. Put the {split!r} split of {dataset} there: one JSON "
            f"object per line, or a CSV, with fields {text_field!r} and {label_field!r}."
        )

    return register_loader(dataset)(load)
