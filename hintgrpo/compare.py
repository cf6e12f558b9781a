"""Paired bootstrap comparisons of prediction files scored on the same rows.

Every method is a list of runs (one per seed) of prediction records as `hintgrpo evaluate` and `hintgrpo baselines`
write them. One bootstrap draw resamples the rows once and scores every run of every method on those rows, so a
difference between two methods is paired: it keeps the row-level correlation between them, and its interval is far
narrower than the two methods' own intervals suggest. A method's value is the mean of its runs' metric. With
`resample_seeds` (the default) each draw also resamples every method's runs with replacement, independently per
method, so an interval covers seed-to-seed variation as well as row sampling (a two-level bootstrap); without it the
seeds are held fixed and the intervals describe row sampling alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hintgrpo.evaluate import score_records
from hintgrpo.tasks import TaskSpec


def read_predictions(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as file:
        return [json.loads(line) for line in file if line.strip()]


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"

    def signed(self) -> str:
        """As a difference: every number with its sign."""
        return f"{self.value:+.3f} [{self.low:+.3f}, {self.high:+.3f}]"


class PairedBootstrap:
    """The metrics of every method on `resamples` bootstrap draws of the shared rows (the same draws for all)."""

    def __init__(
        self,
        methods: dict[str, list[list[dict]]],
        task: TaskSpec,
        resamples: int = 1000,
        seed: int = 0,
        confidence: float = 0.95,
        resample_seeds: bool = True,
    ):
        self.methods, self.confidence = list(methods), confidence
        aligned = {name: [_by_id(run, name) for run in runs] for name, runs in methods.items()}
        ids = sorted(next(iter(aligned.values()))[0])
        for name, runs in aligned.items():
            for run in runs:
                if set(run) != set(ids):
                    raise ValueError(f"{name}: its predictions cover other rows than {self.methods[0]}'s")
        rows = {name: [[run[i] for i in ids] for run in runs] for name, runs in aligned.items()}

        def scores(name: str, draw: np.ndarray | None, runs: np.ndarray) -> dict[str, float]:
            """Each metric's mean over the method's `runs` (indices), on the rows of `draw` (all rows when None)."""
            scored = [score_records(run if draw is None else [run[i] for i in draw], task) for run in rows[name]]
            return {metric: float(np.mean([scored[k][metric] for k in runs])) for metric in scored[0]}

        generator = np.random.default_rng(seed)
        draws = generator.integers(0, len(ids), (resamples, len(ids)))
        run_draws = {
            name: generator.integers(0, len(runs), (resamples, len(runs)))
            if resample_seeds
            else np.tile(np.arange(len(runs)), (resamples, 1))
            for name, runs in rows.items()
        }
        self.point = {name: scores(name, None, np.arange(len(rows[name]))) for name in self.methods}
        self.samples = {
            name: [scores(name, draw, runs) for draw, runs in zip(draws, run_draws[name], strict=True)]
            for name in self.methods
        }
        self.rows = len(ids)

    def _interval(self, value: float, samples: np.ndarray) -> Interval:
        tail = (1 - self.confidence) / 2 * 100
        low, high = np.nanpercentile(samples, [tail, 100 - tail])
        return Interval(value, float(low), float(high))

    def _draws(self, name: str, metric: str) -> np.ndarray:
        return np.array([draw[metric] for draw in self.samples[name]])

    def interval(self, name: str, metric: str) -> Interval:
        return self._interval(self.point[name][metric], self._draws(name, metric))

    def difference_spread(self, name: str, reference: str, metric: str) -> float:
        """The bootstrap standard deviation of `name` − `reference` in `metric` (its standard error)."""
        return float(np.nanstd(self._draws(name, metric) - self._draws(reference, metric)))

    def difference(self, name: str, reference: str, metric: str) -> Interval:
        """`name` − `reference` in `metric`, paired over the same draws of rows."""
        value = self.point[name][metric] - self.point[reference][metric]
        return self._interval(value, self._draws(name, metric) - self._draws(reference, metric))


def _by_id(records: list[dict], name: str) -> dict[str, dict]:
    by_id = {}
    for record in records:
        if record["id"] in by_id:
            raise ValueError(f"{name}: row id {record['id']!r} is predicted twice")
        by_id[record["id"]] = record
    return by_id
