"""What the multimodal trainers share: a row's media as prompt content blocks, encoded prompts, batched media.

A prompt encoder turns one conversation into token ids plus the model inputs of its media (one tensor per
name, for that row alone). Rows are kept apart until a forward pass needs a batch, so TRL can shuffle and
split them like any other per-row field, and `collate_media` then batches exactly the rows of the call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch
import torch.nn.functional as F


class MediaError(ValueError):
    """A row's media is missing or malformed; the message names the row and the column."""

    def __init__(self, row: dict, column: str, problem: str):
        super().__init__(f"row {row.get('id', '?')!r}, column {column!r}: {problem}")


@dataclass
class Encoded:
    ids: list[int]
    media: dict[str, torch.Tensor] = field(default_factory=dict)


class PromptEncoder(Protocol):
    modalities: tuple[str, ...]

    def attach(self, row: dict) -> dict:
        """The row with its media moved into its prompt's last user turn as content blocks."""

    def encode(self, conversation: list[dict], add_generation_prompt: bool = True) -> Encoded:
        """Token ids and media model inputs of a conversation whose media are content blocks."""

    def token_fields(self, input_ids: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-token model inputs that follow from the ids alone (e.g. Qwen2-VL's mm_token_type_ids)."""


def has_media(prompt: list[dict], block_types: tuple[str, ...]) -> bool:
    return any(
        isinstance(message["content"], list) and any(block["type"] in block_types for block in message["content"])
        for message in prompt
    )


def with_blocks(prompt: list[dict], blocks: list[dict], after_text: bool = False) -> list[dict]:
    """A copy of the conversation whose last user turn holds `blocks` and its text (blocks first unless after_text)."""
    last_user = max(i for i, message in enumerate(prompt) if message["role"] == "user")
    content = prompt[last_user]["content"]
    text = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
    user = {**prompt[last_user], "content": text + blocks if after_text else blocks + text}
    return [*prompt[:last_user], user, *prompt[last_user + 1 :]]


def collate_media(rows: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Concatenate each input over the rows' first axis, zero-padding later axes to the longest row.

    Flat inputs (Qwen's pixel_values, grids) concatenate as they are; per-row sequences ([1, T, D] features,
    [1, T] masks) pad to the longest T, padding marked 0 in the mask.
    """
    if not rows or not rows[0]:
        return {}
    names = set(rows[0])
    if any(set(row) != names for row in rows):
        raise ValueError(f"rows of a batch carry different media inputs: {sorted({tuple(sorted(r)) for r in rows})}")
    batch = {}
    for name in sorted(names):
        tensors = [row[name] for row in rows]
        shape = [max(sizes) for sizes in zip(*(t.shape[1:] for t in tensors), strict=True)]
        padded = [
            F.pad(
                t, [p for size, full in reversed(list(zip(t.shape[1:], shape, strict=True))) for p in (0, full - size)]
            )
            for t in tensors
        ]
        batch[name] = torch.cat(padded)
    return batch
