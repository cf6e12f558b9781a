"""The steps in order: for the `hintgrpo augment|score|rewrite` commands, and for `recipes/sft.py` (`preprocess:`).

A command reads its rows from `--input` (a folder written by an earlier step, or a teacher CoT JSONL) or loads
`--task` from `--data_dir` (with `--features_file` for MMSA feature pickles), and writes the result with
`save_to_disk` to `--output_dir`, with its counts in `counts.json`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset, load_from_disk
from transformers import TrainingArguments

from hintgrpo.configs import (
    AugmentArguments,
    DataArguments,
    PreprocessArguments,
    QualityArguments,
    RewriteArguments,
    SFTScriptArguments,
    TeacherArguments,
)
from hintgrpo.data import attach_features, first_rows, load_mmsa_features, load_task_dataset
from hintgrpo.data.mmsa import MMSA_FEATURE_DIMS
from hintgrpo.multimodal.data import with_media
from hintgrpo.preprocess.augment import augment, augment_counts
from hintgrpo.preprocess.quality import score, score_counts
from hintgrpo.preprocess.records import load_cot_records, to_sft_examples
from hintgrpo.preprocess.rewrite import rewrite
from hintgrpo.tasks import get_task

logger = logging.getLogger(__name__)


@dataclass
class StepIOArguments(DataArguments):
    """Where a command's rows come from and where its result goes."""

    task: str | None = field(
        default=None,
        metadata={"help": "Task to load from --data_dir without --input; with a CoT file, only its rows are kept."},
    )
    input: str | None = field(
        default=None, metadata={"help": "A folder written by an earlier step, or a teacher CoT JSONL file."}
    )
    split: str = field(default="train", metadata={"help": "Split to load from --data_dir."})
    features_file: str | None = field(
        default=None, metadata={"help": "MMSA feature pickle whose audio/vision features join the loaded rows."}
    )
    trust_pickle: bool = field(default=False, metadata={"help": "Unpickle --features_file without the allow-list."})
    limit: int | None = field(default=None, metadata={"help": "Only the first N rows."})
    output_dir: str = field(default="outputs/preprocess", metadata={"help": "Where the result is saved."})
    cache_dir: str | None = field(
        default=None, metadata={"help": "Where step results are cached (default: $HINTGRPO_CACHE/preprocess)."}
    )


@dataclass
class AugmentCommandArguments(StepIOArguments, TeacherArguments, AugmentArguments):
    pass


@dataclass
class ScoreCommandArguments(StepIOArguments, QualityArguments):
    pass


@dataclass
class RewriteCommandArguments(StepIOArguments, TeacherArguments, QualityArguments, RewriteArguments):
    preprocess_seed: int = field(default=0, metadata={"help": "Seed of the offline paraphraser's rewrites."})


def load_input(args: StepIOArguments) -> tuple[Dataset, str]:
    """The rows a command works on, and the file or folder they came from (named in errors)."""
    if args.input is not None:
        path = Path(args.input)
        if path.is_dir():
            if args.features_file is not None:
                raise ValueError(f"{path} was written by a step and keeps its rows' features: drop --features_file")
            dataset = load_from_disk(str(path))
        elif path.suffix == ".jsonl":
            dataset = load_cot_records(path, args.task, args.skip_bad_rows)
        else:
            raise FileNotFoundError(f"{path}: expected a folder written by a step, or a teacher CoT .jsonl file")
        source = str(path)
    else:
        if args.task is None:
            raise ValueError("pass --input (a step's folder or a CoT JSONL) or --task with --data_dir")
        dataset = load_task_dataset(args.task, args.data_dir, args.split, args.skip_bad_rows)
        source = f"{args.task} {args.split}"
    if args.features_file is not None:
        mmsa = get_task(dataset[0]["task"]).dataset
        features = load_mmsa_features(
            args.features_file,
            args.split,
            dataset=mmsa if mmsa in MMSA_FEATURE_DIMS else None,
            trust_pickle=args.trust_pickle,
        )
        dataset = attach_features(dataset, features, source=args.features_file)
        source = args.features_file
    dataset = first_rows(dataset, args.limit)
    return dataset, source


def run_augment(args: AugmentCommandArguments) -> dict:
    dataset, source = load_input(args)
    result = augment(dataset, args, args, source=source, cache_dir=args.cache_dir, skip_bad_rows=args.skip_bad_rows)
    return save(result, args, augment_counts(result))


def run_score(args: ScoreCommandArguments) -> dict:
    dataset, source = load_input(args)
    result = score(dataset, args, source=source, cache_dir=args.cache_dir)
    return save(result, args, score_counts(result))


def run_rewrite(args: RewriteCommandArguments) -> dict:
    dataset, source = load_input(args)
    result, counts = rewrite(
        dataset, args, args, args, seed=args.preprocess_seed, source=source, cache_dir=args.cache_dir
    )
    return save(result, args, counts)


def save(dataset: Dataset, args: StepIOArguments, counts: dict) -> dict:
    dataset.save_to_disk(args.output_dir)
    (Path(args.output_dir) / "counts.json").write_text(json.dumps(counts, indent=2) + "\n")
    return counts


def preprocess_records(records: Dataset, args: PreprocessArguments, source: str) -> tuple[Dataset, dict]:
    """`args.preprocess`'s steps run in order on teacher CoT records; the result and each step's counts."""
    counts = {}
    for step in args.preprocess:
        if step == "augment":
            records = augment(records, args, args, source=source, cache_dir=args.preprocess_cache_dir)
            counts[step] = augment_counts(records)
        elif step == "score":
            records = score(records, args, source=source, cache_dir=args.preprocess_cache_dir)
            counts[step] = score_counts(records)
        else:
            records, counts[step] = rewrite(
                records, args, args, args, seed=args.preprocess_seed, source=source, cache_dir=args.preprocess_cache_dir
            )
    return records, counts


def preprocessed_sft_dataset(script_args: SFTScriptArguments, training_args: TrainingArguments) -> Dataset:
    """The SFT examples of `script_args.cot_file` after its `preprocess` steps (the main process computes them,
    the others load the cached result)."""
    with training_args.main_process_first(desc="preprocessing"):
        records = with_media(load_cot_records(script_args.cot_file, script_args.task), script_args, "train")
        records, counts = preprocess_records(records, script_args, script_args.cot_file)
        logger.info("preprocessing %s: %s", script_args.cot_file, json.dumps(counts))
        return to_sft_examples(records, script_args.prompt_style)
