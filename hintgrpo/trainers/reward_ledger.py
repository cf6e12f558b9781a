"""`RewardLedger`: the rewards of one process's rows of a generation batch, each row scored once.

A Hint-GRPO batch is scored to find its hard groups and its zero-variance groups, then some rows are regenerated.
The ledger keeps each row's latest scoring, so only regenerated rows are scored again and the trainer's final
scoring costs nothing more. What the reward functions logged through TRL's hooks is kept with the scoring it came
from: `log_extra` columns row by row, `log_metric` scalars weighted by the rows of the trained batch each scoring
produced, so the logs describe the batch that is trained and not the completions that were replaced.
"""

from __future__ import annotations

import math
from collections import defaultdict

import torch


class RewardLedger:
    def __init__(self, rows: int, reward_count: int, device):
        self.rewards = torch.full((rows, reward_count), math.nan, device=device)
        self.scoring_of_row: list[int | None] = [None] * rows  # which scoring gave each row its reward
        self.extras: dict[str, list] = {}
        self.metrics_of_scoring: list[dict[str, list[float]]] = []

    def unscored(self) -> list[int]:
        return [row for row, scoring in enumerate(self.scoring_of_row) if scoring is None]

    def forget(self, row: int) -> None:
        """Row `row` has a new completion: its reward and what was logged for it no longer apply."""
        self.scoring_of_row[row] = None
        self.rewards[row] = math.nan
        for values in self.extras.values():
            values[row] = None

    def record(self, rows: list[int], rewards: torch.Tensor, extras: dict[str, list], metrics: dict[str, list]):
        """One scoring of `rows`: their rewards (one line per row), the extra columns and scalars it logged."""
        scoring = len(self.metrics_of_scoring)
        self.metrics_of_scoring.append({name: list(values) for name, values in metrics.items()})
        for k, row in enumerate(rows):
            self.scoring_of_row[row] = scoring
            self.rewards[row] = rewards[k]
        for column, values in extras.items():
            logged = self.extras.setdefault(column, [None] * len(self.scoring_of_row))
            for row, value in zip(rows, values, strict=False):
                logged[row] = value

    def logged_metrics(self) -> dict[str, float]:
        """Each logged scalar, averaged over the scorings weighted by the rows of the batch each one produced."""
        weights = defaultdict(int)
        for scoring in self.scoring_of_row:
            if scoring is not None:
                weights[scoring] += 1
        sums, totals = defaultdict(float), defaultdict(int)
        for scoring, metrics in enumerate(self.metrics_of_scoring):
            for name, values in metrics.items():
                if weights[scoring] and values:
                    sums[name] += weights[scoring] * sum(values) / len(values)
                    totals[name] += weights[scoring]
        return {name: sums[name] / totals[name] for name in sums}
