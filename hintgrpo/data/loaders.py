"""`load_task_dataset(name, data_dir, split)`: one entry point from a task name to a `datasets.Dataset`.

Every loader returns rows with at least `id, text, label, task, polarity, context, weight`:
`label` is a float score (regression) or a class name (classification), `polarity` the gold coarse
(discrimination) result, `context` the preceding dialogue ("" when there is none).
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

from datasets import Dataset

from hintgrpo.data.errors import DataError, RowGuard, require_columns
from hintgrpo.tasks import TaskSpec, get_task

logger = logging.getLogger(__name__)

DATA_DIR_ENV = ("HINTGRPO_DATA_DIR", "DATA_DIR")

# What to fetch for each dataset folder when it is missing.
DOWNLOAD_HINTS = {
    "emobank": "emobank/emobank.csv from github.com/JULIELab/EmoBank (corpus/emobank.csv)",
    "meld": "meld/{train,dev,test}_sent_emo.csv from github.com/declare-lab/MELD (data/MELD/)",
    "mustard": "mustard/sarcasm_data.json and folds.json (the 5 folds) from github.com/soujanyaporia/MUStARD (data/)",
    "sst": "sst/{train,dev,test}.txt (PTB trees) from the Stanford Sentiment Treebank (trainDevTestTrees_PTB.zip)",
    "mosi": "mosi/label.csv (and optionally Processed/*.pkl) from the MMSA release of CMU-MOSI",
    "mosei": "mosei/label.csv (and optionally Processed/*.pkl) from the MMSA release of CMU-MOSEI",
    "sims": "sims/label.csv (and optionally Processed/*.pkl) from the MMSA release of CH-SIMS",
}

Loader = Callable[[Path, str, TaskSpec, bool], list[dict]]
LOADERS: dict[str, Loader] = {}


def register_loader(dataset: str) -> Callable[[Loader], Loader]:
    def decorate(loader: Loader) -> Loader:
        LOADERS[dataset] = loader
        return loader

    return decorate


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data folder given, else $HINTGRPO_DATA_DIR, else $DATA_DIR."""
    if data_dir is None:
        data_dir = next((os.environ[name] for name in DATA_DIR_ENV if os.environ.get(name)), None)
    if data_dir is None:
        raise FileNotFoundError(
            "no data folder given: pass --data_dir DIR or set HINTGRPO_DATA_DIR (or DATA_DIR). "
            "It holds one subfolder per dataset, e.g. DIR/emobank/emobank.csv."
        )
    return Path(data_dir).expanduser()


def dataset_folder(data_dir: Path, dataset: str, *files: str) -> Path:
    """`data_dir/dataset`, checked to hold `files`; a missing file says what to download and where."""
    folder = data_dir / dataset
    for name in files:
        if not (folder / name).is_file():
            hint = DOWNLOAD_HINTS.get(dataset, f"{dataset}/{name}")
            raise FileNotFoundError(f"{folder / name} not found. Download {hint} and put it under {data_dir}/.")
    return folder


def make_sample(
    task: TaskSpec, sample_id: str, text: str, label, context: str = "", polarity: str | None = None
) -> dict:
    return {
        "id": str(sample_id),
        "text": text,
        "label": label,
        "task": task.name,
        "polarity": polarity if polarity is not None else task.polarity_of(label),
        "context": context,
        "weight": 1.0,
    }


def load_task_dataset(
    name: str, data_dir: str | os.PathLike | None = None, split: str = "train", skip_bad_rows: bool = False
) -> Dataset:
    """Load `split` of task `name` from `data_dir/<dataset>/` as a Dataset of samples."""
    task = get_task(name)
    if task.dataset not in LOADERS:
        raise ValueError(f"task {name!r} has no loader for dataset {task.dataset!r}")
    rows = LOADERS[task.dataset](resolve_data_dir(data_dir), split, task, skip_bad_rows)
    if not rows:
        raise ValueError(f"task {name!r}, split {split!r}: no rows loaded")
    return Dataset.from_list(rows)


def first_rows(dataset: Dataset, limit: int | None) -> Dataset:
    """The first `limit` rows of `dataset` (all of them when `limit` is None)."""
    if limit is None:
        return dataset
    if limit < 1:
        raise ValueError(f"--limit must be at least 1, got {limit}")
    return dataset.select(range(min(limit, len(dataset))))


def read_csv_records(path: Path) -> tuple[list[str], list[dict]]:
    """Header and records of a UTF-8 CSV (a leading BOM allowed); a short row's missing fields are "", a long row
    is an error.

    A byte that is not UTF-8 becomes U+FFFD, which RowGuard.decodes reports with its row and field (and which
    skip_bad_rows can skip), instead of one bad byte failing the whole file. Strict parsing makes a quoted field
    that the file ends inside (a file cut short) an error, where csv would return what it read of it.
    """
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as handle:  # -sig: a leading BOM is dropped
        reader = csv.DictReader(handle, restval="", strict=True)
        records = []
        try:
            records.extend(reader)
        except csv.Error as error:
            message = f"not valid CSV at line {reader.line_num} ({error}): a stray quote, or a quoted field left open"
            raise DataError(path, len(records) + 1, None, message + " (as in a file cut short)") from None
        for row, record in enumerate(records, start=1):
            if None in record:  # csv keeps the fields past the header under the key None
                extra = len(record[None])
                raise DataError(
                    path, row, None, f"{extra} more field(s) than the header: an unquoted comma inside a field?"
                )
        return list(reader.fieldnames or []), records


def check_split(dataset: str, split: str, known: tuple[str, ...]) -> None:
    if split not in known:
        raise ValueError(f"{dataset}: unknown split {split!r}; expected one of {list(known)}")


EMOBANK_SPLITS = ("train", "dev", "test")


@register_loader("emobank")
def load_emobank(data_dir: Path, split: str, task: TaskSpec, skip_bad_rows: bool) -> list[dict]:
    """EmoBank: valence V in [1, 5] (mean of raters) mapped to s = 1.5 * (V - 3) in [-3, 3]."""
    check_split("emobank", split, EMOBANK_SPLITS)
    path = dataset_folder(data_dir, "emobank", "emobank.csv") / "emobank.csv"
    columns, records = read_csv_records(path)
    require_columns(path, columns, ("id", "split", "V", "text"))
    guard, rows = RowGuard(path, skip_bad_rows), []
    for row_number, record in enumerate(records, start=1):
        # Every row's split is checked, so a typo cannot drop a row from all of them.
        if not guard.decodes(row_number, record):
            continue
        if guard.choice(row_number, "split", record["split"].strip(), EMOBANK_SPLITS) != split:
            continue
        sample_id = guard.text(row_number, "id", record["id"])
        text = guard.text(row_number, "text", record["text"])
        valence = guard.number(row_number, "V", record["V"], 1.0, 5.0)
        if sample_id is None or text is None or valence is None:
            continue
        score = 1.5 * (valence - 3.0)
        if guard.unique(row_number, "id", sample_id, score):
            rows.append(make_sample(task, sample_id, text, score))
    guard.report()
    return rows


def format_dialogue(turns: list[tuple[str, str]]) -> str:
    return "\n".join(f"{speaker}: {utterance}" for speaker, utterance in turns)


@register_loader("meld")
def load_meld(data_dir: Path, split: str, task: TaskSpec, skip_bad_rows: bool) -> list[dict]:
    """MELD: each utterance with the earlier turns of its dialogue as context."""
    check_split("meld", split, ("train", "dev", "test"))
    path = dataset_folder(data_dir, "meld", f"{split}_sent_emo.csv") / f"{split}_sent_emo.csv"
    columns, records = read_csv_records(path)
    require_columns(path, columns, ("Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID"))
    label_field = "Sentiment" if task.name == "meld_sentiment" else "Emotion"
    guard, rows, history = RowGuard(path, skip_bad_rows), [], {}
    skipped_turns: dict[str, list[int]] = {}  # dialogue -> its skipped rows so far
    gaps = []  # the later turns whose context lacks a skipped row
    for row_number, record in enumerate(records, start=1):
        decodes = guard.decodes(row_number, record)
        text = guard.text(row_number, "Utterance", record["Utterance"])
        label = guard.choice(row_number, label_field, record[label_field].strip().lower(), task.labels)
        polarity = guard.choice(row_number, "Sentiment", record["Sentiment"].strip().lower(), task.polarities)
        dialogue, utterance = record["Dialogue_ID"].strip(), record["Utterance_ID"].strip()
        sample_id = f"{split}_dia{dialogue}_utt{utterance}"
        good = decodes and None not in (text, label, polarity)
        if not (good and guard.unique(row_number, "Utterance_ID", sample_id, label)):
            skipped_turns.setdefault(dialogue, []).append(row_number)
            continue
        if dialogue in skipped_turns:
            gaps.append(
                f"dialogue {dialogue} utterance {utterance} (row {row_number}) lacks rows {skipped_turns[dialogue]}"
            )
        turns = history.setdefault(dialogue, [])
        speaker = record["Speaker"].strip() or "Speaker"
        rows.append(make_sample(task, sample_id, f"{speaker}: {text}", label, format_dialogue(turns), polarity))
        turns.append((speaker, text))
    guard.report()
    if gaps:
        shown = "; ".join(gaps[:10]) + ("; ..." if len(gaps) > 10 else "")
        logger.warning("%s: the context of %d turns lacks skipped rows of their dialogue: %s", path, len(gaps), shown)
    return rows


MUSTARD_LABELS = {True: "sarcastic", False: "sincere"}


class JsonPairs(list):
    """A JSON object as its (key, value) pairs in file order, a repeated key included."""


def mustard_split_indices(folds_path: Path, split: str, n_rows: int) -> list[int]:
    """`all`, or `fold<k>_<train|test>` for k in 1..5 (the MUStARD authors' stratified folds)."""
    if split == "all":
        return list(range(n_rows))
    fold, _, part = split.partition("_")
    known = [f"fold{k}_{p}" for k in range(1, 6) for p in ("train", "test")]
    if split not in known:
        raise ValueError(f"mustard: unknown split {split!r}; expected 'all' or one of {known}")
    folds = json.loads(folds_path.read_text(encoding="utf-8"))["folds"]
    indices = folds[int(fold.removeprefix("fold")) - 1][part]
    bad = [index for index in indices if not 0 <= index < n_rows]
    if bad:
        raise DataError(folds_path, split, part, f"indices {bad[:5]} outside the {n_rows} utterances")
    return indices


@register_loader("mustard")
def load_mustard(data_dir: Path, split: str, task: TaskSpec, skip_bad_rows: bool) -> list[dict]:
    folder = dataset_folder(data_dir, "mustard", "sarcasm_data.json")
    path = folder / "sarcasm_data.json"
    try:
        # As pairs, so that a key given twice is reported rather than kept once.
        items = json.loads(path.read_text(encoding="utf-8", errors="replace"), object_pairs_hook=JsonPairs)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(path, None, None, f"not valid UTF-8 JSON ({error})") from None
    if not isinstance(items, JsonPairs):
        raise DataError(path, None, None, f"expected an object of utterances, got {type(items).__name__}")
    if split != "all":
        dataset_folder(data_dir, "mustard", "folds.json")
    guard, rows = RowGuard(path, skip_bad_rows), []
    for index in mustard_split_indices(folder / "folds.json", split, len(items)):
        key, item = items[index]
        if not isinstance(item, JsonPairs):
            guard.reject(key, None, f"expected an object, got {type(item).__name__}")
            continue
        item = dict(item)
        if not guard.decodes(key, {"id": key} | item):
            continue
        text = guard.text(key, "utterance", item.get("utterance"))
        sarcasm = item.get("sarcasm")
        if not isinstance(sarcasm, bool):
            guard.reject(key, "sarcasm", f"expected true or false, got {sarcasm!r}")
            continue
        if text is None or not guard.unique(f"{key} (item {index + 1})", "id", key, MUSTARD_LABELS[sarcasm]):
            continue
        speakers = item.get("context_speakers") or []
        context = item.get("context") or []
        turns = [(speakers[i] if i < len(speakers) else "Speaker", line) for i, line in enumerate(context)]
        speaker = item.get("speaker") or "Speaker"
        rows.append(make_sample(task, key, f"{speaker}: {text}", MUSTARD_LABELS[sarcasm], format_dialogue(turns)))
    guard.report()
    return rows
