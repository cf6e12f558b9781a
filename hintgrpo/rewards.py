"""Reward functions with TRL's signature: `f(completions, **columns) -> list[float | None]`.

Gold values come from the dataset columns TRL passes as keyword arguments: `task`, `label` and
`polarity`. A reward that does not apply to a row's task (regression on a classification task,
accuracy on a regression task) returns None there, which TRL leaves out of the weighted sum.
"""

from __future__ import annotations

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


def make_regression_reward(tau: float | None = None) -> RewardFunc:
    """1 − min(1, |ŝ − s| / τ); τ defaults to a quarter of each task's score range. 0 without an answer."""

    def regression_reward(completions, task, label, **kwargs) -> list[float | None]:
        rewards = []
        for (parsed, spec), gold in zip(parsed_rows(completions, task), label, strict=True):
            if not spec.is_regression:
                rewards.append(None)
            elif not parsed.has_answer:
                rewards.append(0.0)
            else:
                scale = tau if tau is not None else (spec.score_range[1] - spec.score_range[0]) / 4
                rewards.append(1.0 - min(1.0, abs(parsed.answer - float(gold)) / scale))
        return rewards

    return regression_reward


REWARDS: dict[str, Callable[..., RewardFunc]] = {
    "format": lambda **_: format_reward,
    "polarity": lambda **_: polarity_reward,
    "consistency": lambda **_: consistency_reward,
    "accuracy": lambda **_: accuracy_reward,
    "regression": lambda regression_tau=None, **_: make_regression_reward(regression_tau),
}


def get_reward_funcs(names: list[str], regression_tau: float | None = None) -> list[RewardFunc]:
    """Reward functions by name, in order, for `GRPOTrainer(reward_funcs=...)`."""
    unknown = [name for name in names if name not in REWARDS]
    if unknown:
        raise ValueError(f"unknown reward(s) {unknown}; available: {', '.join(REWARDS)}")
    return [REWARDS[name](regression_tau=regression_tau) for name in names]
