"""Dataclass arguments for the scripts and CLI steps, parsed by `trl.TrlParser` (YAML via --config, and CLI)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DataArguments:
    task: str = field(
        default="emobank", metadata={"help": "Task name from hintgrpo.tasks (e.g. emobank, meld_sentiment)."}
    )
    data_dir: str | None = field(
        default=None,
        metadata={"help": "Folder with one subfolder per dataset; defaults to $HINTGRPO_DATA_DIR or $DATA_DIR."},
    )
    skip_bad_rows: bool = field(
        default=False, metadata={"help": "Skip and count malformed rows instead of stopping at the first one."}
    )


@dataclass
class EvaluateArguments(DataArguments):
    model: str = field(
        default="smollm2-135m-instruct",
        metadata={"help": "A shipped model's name (see `hintgrpo models prepare`), an HF id or a local folder."},
    )
    split: str = field(default="dev", metadata={"help": "Dataset split to evaluate."})
    output_dir: str = field(default="outputs/eval", metadata={"help": "Where metrics, predictions and plots go."})
    limit: int | None = field(default=None, metadata={"help": "Evaluate only the first N rows."})
    batch_size: int = field(default=64, metadata={"help": "Prompts generated together."})
    max_new_tokens: int = field(default=128, metadata={"help": "Generation budget per completion."})
