"""Prompts for a text LLM with an MSE-Adapter: pre-extracted feature arrays in, a pseudo-token span out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hintgrpo.multimodal.adapter import MSEAdapterConfig, add_span_tokens, feature_keys
from hintgrpo.multimodal.inputs import Encoded, MediaError, has_media, with_blocks

FEATURES_BLOCK = "features"


def check_features(row: dict, modality: str, size: int) -> np.ndarray:
    """The row's `modality` column as a float32 [frames, size] array, or a MediaError saying what is wrong."""
    value = row.get(modality)
    if value is None:
        raise MediaError(row, modality, f"no {modality} features; every row needs them")
    array = np.asarray(value, dtype=np.float32)
    if array.ndim != 2 or array.shape[1] != size:
        raise MediaError(row, modality, f"features of shape {array.shape}; expected [frames, {size}]")
    if array.shape[0] == 0:
        raise MediaError(row, modality, "features with no frames")
    if not np.isfinite(array).all():
        raise MediaError(row, modality, "features hold NaN or infinite values")
    return array


@dataclass
class FeaturePromptEncoder:
    """Renders a row's features as the adapter's span after the utterance; the arrays become model inputs."""

    tokenizer: object
    config: MSEAdapterConfig

    def __post_init__(self):
        add_span_tokens(self.tokenizer, self.config)

    @property
    def modalities(self) -> tuple[str, ...]:
        return self.config.modalities

    def attach(self, row: dict) -> dict:
        if has_media(row["prompt"], (FEATURES_BLOCK,)):
            return row
        arrays = {name: check_features(row, name, size) for name, size in self.config.feature_dims.items()}
        block = {"type": FEATURES_BLOCK, FEATURES_BLOCK: arrays}
        rest = {k: v for k, v in row.items() if k not in arrays}
        return rest | {"prompt": with_blocks(row["prompt"], [block], after_text=True)}

    def encode(self, conversation: list[dict], add_generation_prompt: bool = True) -> Encoded:
        arrays, messages = None, []
        for message in conversation:
            content = message["content"]
            if isinstance(content, list):
                parts = []
                for block in content:
                    if block["type"] == FEATURES_BLOCK:
                        arrays = block[FEATURES_BLOCK]
                        parts.append(self.config.span())
                    else:
                        parts.append(block["text"])
                content = "\n".join(parts)
            messages.append({**message, "content": content})
        if arrays is None:
            raise ValueError("the conversation has no features block: build it with FeaturePromptEncoder.attach")
        ids = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=add_generation_prompt, tokenize=True, return_dict=False
        )
        media = {}
        for name, array in arrays.items():
            frames_key, mask_key = feature_keys(name)
            media[frames_key] = torch.as_tensor(np.asarray(array, dtype=np.float32)).unsqueeze(0)
            media[mask_key] = torch.ones(media[frames_key].shape[:2], dtype=torch.long)
        return Encoded(list(ids), media)

    def token_fields(self, input_ids: torch.Tensor) -> dict[str, torch.Tensor]:
        return {}
