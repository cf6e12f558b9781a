"""Reward functions with TRL's signature: `f(completions, **columns) -> list[float | None]`.

Gold values come from the dataset columns TRL passes as keyword arguments: `task`, `label` and
`polarity`. A reward that does not apply to a row's task (regression on a classification task,
accuracy on a regression task) returns None there, which TRL leaves out of the weighted sum.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable

from hintgrpo.reasoning import ParsedCompletion, parse_completion
from hintgrpo.tasks import TaskSpec, get_task

RewardFunc = Callable[..., list[float | None]]


def completion_text(completion) -> str:
    """The assistant text of a standard (str) or conversational (list of messages) completion."""
    if isinstance(completion, str):
        return completion
    return "".join(message.get("content") or "" for message in completion if message.get("role") == "assistant")


def parsed_rows(completions, task: list[str]) -> list[tuple[ParsedCompletion, TaskSpec]]:
    specs = [get_task(name) for name in task]
    return [(parse_completion(completion_text(c), spec), spec) for c, spec in zip(completions, specs, strict=True)]


def format_reward(completions, task, **kwargs) -> list[float]:
    """1 for a well-formed DC completion: see `parse_completion` (each tag once, one polarity, one valid answer)."""
    return [float(parsed.well_formed) for parsed, _ in parsed_rows(completions, task)]


def polarity_reward(completions, task, polarity, **kwargs) -> list[float]:
    """1 when the discrimination phase states the gold coarse result (the classification term)."""
    return [
        float(parsed.polarity == gold)
        for (parsed, _), gold in zip(parsed_rows(completions, task), polarity, strict=True)
    ]


def consistency_reward(completions, task, polarity, **kwargs) -> list[float]:
    """1 when the stated polarity agrees with the polarity of the final answer.

    A label with no fixed polarity (MELD's surprise) has the row's gold polarity: on a positive-surprise row,
    "positive" with "surprise" earns what "positive" with "joy" earns. Leaving such rows unscored would not do:
    TRL sums the rewards with nansum, so None counts as 0 and "joy" would still out-earn the gold "surprise".
    """
    return [
        float(parsed.has_answer and parsed.polarity == spec.polarity_of(parsed.answer, gold))
        for (parsed, spec), gold in zip(parsed_rows(completions, task), polarity, strict=True)
    ]


def accuracy_reward(completions, task, label, **kwargs) -> list[float | None]:
    """Classification tasks: 1 for the gold label."""
    return [
        None if spec.is_regression else float(parsed.answer == gold)
        for (parsed, spec), gold in zip(parsed_rows(completions, task), label, strict=True)
    ]


# EmoBank train (s = 1.5 (V - 3), label std 0.53), mean reward of always answering 0 and of 5-fold cross-fitted
# TF-IDF predictions: 0.76 and 0.79 with τ = range / 4 = 1.5; 0.60 and 0.63 with τ = 1.5 std = 0.79.
DEFAULT_TAU_STD = 1.5


class RegressionReward:
    """1 − min(1, |ŝ − s| / τ) on regression tasks, 0 without an answer, None on other tasks.

    τ is `tau` when given; else `tau_std` standard deviations of the task's training labels, once `fit` has
    seen them (`fit_reward_scales`); else a quarter of the task's score range. A τ at the scale of the label
    spread ranks fine-grained answers; at the scale of the range, a constant answer near the label mean earns
    most of the reward where the labels cluster (EmoBank).
    """

    def __init__(self, tau: float | None = None, tau_std: float = DEFAULT_TAU_STD):
        self.__name__ = "regression_reward"  # TRL's name for the reward's metrics
        self.tau, self.tau_std = tau, tau_std
        self.task_taus: dict[str, float] = {}

    def fit(self, dataset) -> RegressionReward:
        """Set each regression task's τ from the spread of its labels in `dataset` (rows with `task` and `label`)."""
        labels = defaultdict(list)
        for name, label in zip(dataset["task"], dataset["label"], strict=True):
            if get_task(name).is_regression:
                labels[name].append(float(label))
        spreads = {name: statistics.pstdev(values) for name, values in labels.items()}
        self.task_taus = {name: self.tau_std * spread for name, spread in spreads.items() if spread > 0}
        return self

    def scale(self, spec: TaskSpec) -> float:
        if self.tau is not None:
            return self.tau
        if spec.name in self.task_taus:
            return self.task_taus[spec.name]
        return (spec.score_range[1] - spec.score_range[0]) / 4

    def __call__(self, completions, task, label, **kwargs) -> list[float | None]:
        rewards = []
        for (parsed, spec), gold in zip(parsed_rows(completions, task), label, strict=True):
            if not spec.is_regression:
                rewards.append(None)
            elif not parsed.has_answer:
                rewards.append(0.0)
            else:
                rewards.append(1.0 - min(1.0, abs(parsed.answer - float(gold)) / self.scale(spec)))
        return rewards


def fit_reward_scales(reward_funcs: list[RewardFunc], train_dataset) -> None:
    """Let the rewards that scale with the training labels (the regression reward) see them."""
    for func in reward_funcs:
        if isinstance(func, RegressionReward):
            func.fit(train_dataset)


REWARDS: dict[str, Callable[..., RewardFunc]] = {
    "format": lambda **_: format_reward,
    "polarity": lambda **_: polarity_reward,
    "consistency": lambda **_: consistency_reward,
    "accuracy": lambda **_: accuracy_reward,
    "regression": lambda regression_tau=None, regression_tau_std=DEFAULT_TAU_STD, **_: RegressionReward(
        regression_tau, regression_tau_std
    ),
}


def get_reward_funcs(
    names: list[str], regression_tau: float | None = None, regression_tau_std: float = DEFAULT_TAU_STD
) -> list[RewardFunc]:
    """Reward functions by name, in order, for `GRPOTrainer(reward_funcs=...)`; see `fit_reward_scales`."""
    unknown = [name for name in names if name not in REWARDS]
    if unknown:
        raise ValueError(f"unknown reward(s) {unknown}; available: {', '.join(REWARDS)}")
    return [REWARDS[name](regression_tau=regression_tau, regression_tau_std=regression_tau_std) for name in names]
