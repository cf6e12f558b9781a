"""Hint-GRPO building blocks: which groups are hard, how likely a hint is, which rows it replaces, what it says.

Pure functions over tensors and samples, so the trainer's bookkeeping can be tested on hand-made rewards.
"""

from __future__ import annotations

import math

import torch

from hintgrpo.reasoning import discrimination_opening
from hintgrpo.tasks import TaskSpec


def hard_groups(
    polarity_correct: torch.Tensor,
    total_rewards: torch.Tensor,
    num_generations: int,
    trigger: str,
    reward_threshold: float,
) -> torch.Tensor:
    """One flag per group of `num_generations` consecutive rows: True when the group is hard.

    'polarity': no completion of the group states the gold polarity. 'reward': the group's best total
    reward is below `reward_threshold` (NaN rewards, i.e. unscorable rows, never count as the best).
    """
    if trigger == "polarity":
        return ~polarity_correct.view(-1, num_generations).any(dim=1)
    if trigger == "reward":
        best = torch.nan_to_num(total_rewards, nan=-math.inf).view(-1, num_generations).max(dim=1).values
        return best < reward_threshold
    raise ValueError(f"unknown hint trigger {trigger!r}")


def hint_probability(progress: float, schedule: str, start: float, end: float) -> float:
    """Probability of hinting a hard group at `progress` (0 to 1 of training): constant `start`, or `start` to `end`."""
    if schedule == "constant":
        return start
    progress = min(1.0, max(0.0, progress))
    if schedule == "linear":
        return start + (end - start) * progress
    if schedule == "cosine":
        return end + (start - end) * 0.5 * (1 + math.cos(math.pi * progress))
    raise ValueError(f"unknown hint schedule {schedule!r}")


def rank_agnostic_generator(seed: int, batch: int, draw: int = 0) -> torch.Generator:
    """A CPU generator seeded by (seed, generation batch, draw) alone, so every rank draws the same numbers."""
    return torch.Generator().manual_seed((seed * 1_000_003 + batch) * 101 + draw)


def sample_hinted_groups(hard: torch.Tensor, probability: float, seed: int, batch: int) -> torch.Tensor:
    """The hard groups that get a hint in generation batch `batch`, drawn identically on every rank."""
    if probability >= 1.0:
        return hard.clone()
    generator = rank_agnostic_generator(seed, batch)
    draws = torch.rand(hard.numel(), generator=generator)
    return hard & (draws.to(hard.device) < probability)


def hinted_rows(hinted: torch.Tensor, num_generations: int, group: str, hint_rows: int) -> torch.Tensor:
    """One flag per row: the rows of the hinted groups that are regenerated with the hint.

    'replace': every row of the group. 'mix': its last `hint_rows` rows; the others keep their failed
    completions, so the group's advantages are computed over failed and hinted completions together.
    """
    rows = hinted.unsqueeze(1).repeat(1, num_generations)
    if group == "mix":
        rows[:, : num_generations - hint_rows] = False
    elif group != "replace":
        raise ValueError(f"unknown hint group {group!r}")
    return rows.flatten()


def hint_reveals_label(task: TaskSpec) -> bool:
    """Whether the hinted coarse result determines the label (MELD sentiment, MUStARD): then a hint is the answer."""
    if task.is_regression:
        return False
    return len(set(task.coarse_of_label.values())) == len(task.labels) and not task.row_polarity_labels


def hint_prefix(gold_polarity: str) -> str:
    """'prefix' mode: the forced start of the completion, up to the stated gold polarity."""
    return discrimination_opening(gold_polarity)


def hint_prompt(prompt: list[dict], gold_polarity: str, template: str) -> list[dict]:
    """'prompt' mode: a copy of the conversation whose last user turn ends with the hint sentence."""
    last_user = max(i for i, message in enumerate(prompt) if message["role"] == "user")
    hinted = [dict(message) for message in prompt]
    hint = template.format(polarity=gold_polarity)
    content = hinted[last_user]["content"]
    if isinstance(content, str):
        hinted[last_user]["content"] = f"{content}\n\n{hint}"
    else:  # multimodal content blocks
        hinted[last_user]["content"] = [*content, {"type": "text", "text": hint}]
    return hinted


def groups_within_budget(wanted: int, rows_per_group: int, remaining: float, batch_rows: int) -> int:
    """How many of `wanted` groups to regenerate, `rows_per_group` rows each, with `remaining` completions left.

    The most that leave the budget either spent or with room for at least one more generation batch of
    `batch_rows`, so that a run can stop on its budget exactly; in the last batch, when no count does, the most
    that fit.
    """
    if math.isinf(remaining):
        return wanted
    fitting = max(0, min(wanted, int(remaining // rows_per_group)))
    for count in range(fitting, -1, -1):
        left = remaining - count * rows_per_group
        if left == 0 or left >= batch_rows:
            return count
    return fitting


def first_groups(flags: torch.Tensor, count: int) -> torch.Tensor:
    """`flags` with only its first `count` True entries kept."""
    return flags & (flags.cumsum(dim=0) <= count)


def policy_shaping_weights(logps: torch.Tensor, gamma: float) -> torch.Tensor:
    """LUFFY's policy shaping (arXiv 2504.14945) as a weight on a token's ∇log π.

    An off-policy token trained with the objective f(π) = π / (π + γ) instead of an importance ratio gets the
    gradient γ·π / (π + γ)² · ∇log π: at most 1/4 (at π = γ), so no token moves the policy far in one update, and
    decaying only linearly as π → 0 rather than vanishing, so the tokens the policy finds unlikely still learn.
    """
    probabilities = logps.exp()
    return gamma * probabilities / (probabilities + gamma) ** 2


def group_has_variance(rewards: torch.Tensor, num_generations: int) -> torch.Tensor:
    """Per group: True when its total rewards are not all equal (it carries a learning signal)."""
    grouped = torch.nan_to_num(rewards, nan=0.0).view(-1, num_generations)
    return (grouped.max(dim=1).values - grouped.min(dim=1).values) > 1e-6
