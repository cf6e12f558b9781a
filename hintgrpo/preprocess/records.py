"""The rows the steps work on, and what SFT trains on after them.

Rows are samples (`hintgrpo.data.loaders.make_sample`), with `cot` and `status` when they come from a teacher
CoT file, plus two lineage columns: `source_id` (the id of the loaded row a row derives from; a loaded row's own
id) and `augmentation` (how the row was made: "" for a loaded row, else an augmenter's name or rewrite_<part>).
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

from datasets import Dataset

from hintgrpo.data.errors import RowGuard
from hintgrpo.data.generic import generic_context, generic_label, read_jsonl_records
from hintgrpo.data.loaders import make_sample
from hintgrpo.data.prompts import MODALITY_COLUMNS, build_messages
from hintgrpo.preprocess.self_question import student_messages
from hintgrpo.tasks import TASKS, get_task

logger = logging.getLogger(__name__)

SELF_QUESTION = "self_question"
STATUSES = ("accepted", "rejected")
COT_COLUMNS = ("id", "task", "label", "polarity", "weight")


def load_cot_records(path: str | os.PathLike, task: str | None = None, skip_bad_rows: bool = False) -> Dataset:
    """Every record of a teacher CoT file (`hintgrpo synthesize`), accepted and rejected, checked like a loader's rows.

    A bad line (not JSON, unknown task, missing text or rationale, label outside the task, repeated id) is an
    error naming the file, the line and the field, or with `skip_bad_rows` is skipped and counted. The file is
    only read, so a synthesis run may still be appending to it: its unfinished last line is left out.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: write it with `hintgrpo synthesize --output_file {path}`")
    guard, rows, first_line = RowGuard(path, skip_bad_rows), [], {}
    for line, record in read_jsonl_records(path, guard, still_written=True):
        if task is not None and record.get("task") != task:
            continue
        spec = TASKS.get(record.get("task"))
        if spec is None:
            guard.reject(line, "task", f"unknown task {record.get('task')!r}")
            continue
        sample_id = guard.text(line, "id", None if record.get("id") is None else str(record["id"]))
        text = guard.text(line, "text", record.get("text"))
        label = generic_label(guard, line, "label", record.get("label"), spec)
        polarity = guard.choice(line, "polarity", record.get("polarity"), spec.polarities)
        context = generic_context(guard, line, "context", record.get("context"))
        cot = guard.text(line, "cot", record.get("cot"))
        status = guard.choice(line, "status", record.get("status"), STATUSES)
        weight = guard.number(line, "weight", record.get("weight", 1.0), 0.0, math.inf)
        if None in (sample_id, text, label, polarity, context, cot, status, weight):
            continue
        if (spec.name, sample_id) in first_line:
            first = first_line[spec.name, sample_id]
            guard.reject(line, "id", f"{sample_id!r} of task {spec.name} is already on line {first}")
            continue
        first_line[spec.name, sample_id] = line
        row = make_sample(spec, sample_id, text, label, context, polarity)
        rows.append(row | {"weight": weight, "cot": cot, "status": status})
    guard.report()
    if not rows:
        raise ValueError(f"{path} holds no records" + (f" of task {task!r}" if task else ""))
    if len({get_task(row["task"]).kind for row in rows}) > 1:
        raise ValueError(f"{path} mixes regression and classification tasks (their labels differ in type): pass task")
    return Dataset.from_list(rows)


def with_lineage(dataset: Dataset) -> Dataset:
    """`dataset` with `source_id` and `augmentation` columns (loaded rows derive from themselves)."""
    if "source_id" not in dataset.column_names:
        dataset = dataset.add_column("source_id", dataset["id"])
    if "augmentation" not in dataset.column_names:
        dataset = dataset.add_column("augmentation", [""] * len(dataset))
    return dataset


def sft_example(row: dict, prompt_style: str | None = None) -> dict:
    task = get_task(row["task"])
    if row["augmentation"] == SELF_QUESTION:
        prompt = student_messages(row, task)
    else:
        prompt = build_messages(row, task, prompt_style)
    return {"prompt": prompt, "completion": [{"role": "assistant", "content": row["cot"]}]}


def load_cot_dataset(path: str | os.PathLike, task: str | None = None, prompt_style: str | None = None) -> Dataset:
    """The accepted records of a teacher CoT file as TRL conversational prompt–completion data.

    Columns: `prompt` (the student's chat prompt: `build_messages` in `prompt_style`), `completion`
    (`[{"role": "assistant", "content": cot}]`), and `id`, `task`, `label`, `polarity`, `weight`. With `task`, only
    that task's records.
    """
    examples = to_sft_examples(load_cot_records(path, task), prompt_style)
    if not len(examples):
        raise ValueError(f"{path} holds no accepted records" + (f" of task {task!r}" if task else ""))
    return examples


def to_sft_examples(dataset: Dataset, prompt_style: str | None = None) -> Dataset:
    """TRL prompt–completion rows (as `load_cot_dataset` gives) of the rows whose rationale was validated.

    Rejected rationales stay in the preprocessed data (the rewrite step may save them) but are not trained on,
    as without preprocessing. Self-questioning rows get their own prompt.
    """
    if "cot" not in dataset.column_names:
        raise ValueError("SFT needs rationales: preprocess teacher CoT records (the JSONL of `hintgrpo synthesize`)")
    validated = with_lineage(dataset).filter(lambda status: status == "accepted", input_columns="status")
    if len(validated) < len(dataset):
        logger.info("training on %d of %d rows: the rest have no validated rationale", len(validated), len(dataset))
    kept = (*COT_COLUMNS, *MODALITY_COLUMNS)
    return validated.map(
        sft_example,
        fn_kwargs={"prompt_style": prompt_style},
        remove_columns=[c for c in validated.column_names if c not in kept],
    )
