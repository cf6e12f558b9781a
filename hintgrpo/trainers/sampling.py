"""How GRPO draws its training prompts beyond TRL's sampler: a hard pool, and fresh prompts for DAPO refills.

`hard_pool_ids` reads the pool from a `hintgrpo evaluate` predictions file on the training split (the rows whose
stated polarity is not the gold one). `HardPoolSampler` is TRL's `RepeatSampler` with another order of prompts:
each prompt is drawn from the pool with probability `hard_share` and from the other rows otherwise, each side
walked without replacement in a fresh shuffle every time it runs out. A hard row is then drawn with frequency
`hard_share / len(pool)` and any other row with `(1 - hard_share) / (rows - len(pool))`. `ShuffledRows` is
the walk both sides use, and the stream DAPO refills draw their fresh prompts from.
"""

from __future__ import annotations

from pathlib import Path

import torch
from trl.trainer.utils import RepeatSampler

from hintgrpo.data.errors import DataError
from hintgrpo.jsonl import read_records


def hard_pool_ids(predictions_file: str | Path) -> set[str]:
    """The ids of the rows of a predictions file whose stated polarity is not the gold one."""
    hard = set()
    for row, record in enumerate(read_records(Path(predictions_file), repair=False), start=1):
        missing = [name for name in ("id", "polarity", "gold_polarity") if name not in record]
        if missing:
            raise DataError(
                predictions_file, row, missing[0], "missing: is this a `hintgrpo evaluate` predictions file?"
            )
        if record["polarity"] != record["gold_polarity"]:
            hard.add(str(record["id"]))
    return hard


def hard_rows(ids: list[str], pool: set[str], source: str) -> list[int]:
    """The dataset rows (indexes into `ids`) of the pool; every pooled id must be a row."""
    unknown = pool - set(ids)
    if unknown:
        raise DataError(source, None, "id", f"{len(unknown)} id(s) are not training rows, e.g. {sorted(unknown)[0]!r}")
    rows = [index for index, sample_id in enumerate(ids) if sample_id in pool]
    if not rows:
        raise DataError(source, None, None, "no row has a wrong polarity, so the hard pool is empty")
    if len(rows) == len(ids):
        raise DataError(source, None, None, "every training row is in the hard pool: there is nothing to mix it with")
    return rows


class ShuffledRows:
    """Endless draws from `rows` without replacement, reshuffled each time they run out (the same on every rank
    that seeds its generator alike and draws in the same order)."""

    def __init__(self, rows: list[int], generator: torch.Generator):
        self.rows, self.generator, self.order = rows, generator, []

    def next(self) -> int:
        if not self.order:
            self.order = [self.rows[i] for i in torch.randperm(len(self.rows), generator=self.generator).tolist()]
        return self.order.pop()


class HardPoolSampler(RepeatSampler):
    def __init__(self, *args, hard_rows: list[int], hard_share: float, seed: int, **kwargs):
        super().__init__(*args, seed=seed, **kwargs)
        self.hard_share = hard_share
        self.generator = torch.Generator().manual_seed(seed)  # the same on every rank: groups stay aligned
        pooled = set(hard_rows)
        self.hard = ShuffledRows(sorted(pooled), self.generator)
        self.others = ShuffledRows([i for i in range(self.num_samples) if i not in pooled], self.generator)

    def __iter__(self):
        from_pool = (torch.rand(self.num_samples, generator=self.generator) < self.hard_share).tolist()
        indexes = [self.hard.next() if hard else self.others.next() for hard in from_pool]
        chunks = [indexes[i : i + self.batch_size] for i in range(0, len(indexes), self.batch_size)]
        for chunk in chunks:
            if len(chunk) < self.batch_size:
                continue
            for _ in range(self.repeat_count):
                for index in chunk:
                    for _ in range(self.mini_repeat_count):
                        yield index
