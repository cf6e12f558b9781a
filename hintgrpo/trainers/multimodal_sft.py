"""Weighted SFT on prompt–completion rows with media (features for the MSE-Adapter, or audio/video/images).

`MultimodalSFTCollator` encodes each row with a `PromptEncoder` (the same one GRPO uses, so both stages see
the same prompts), labels only the completion tokens, spreads the row's `weight` over its tokens for
`WeightedSFTTrainer`, and batches the rows' media model inputs beside the ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from trl.trainer.utils import pad

from hintgrpo.multimodal.adapter import MSEAdapterCheckpoints, check_adapter_training
from hintgrpo.multimodal.inputs import PromptEncoder, collate_media
from hintgrpo.trainers.weighted_sft import WEIGHT_COLUMN, WeightedSFTTrainer


@dataclass
class MultimodalSFTCollator:
    prompt_encoder: PromptEncoder
    pad_token_id: int

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        input_ids, labels, weights, media = [], [], [], []
        for example in examples:
            row = self.prompt_encoder.attach(example)
            prompt = self.prompt_encoder.encode(row["prompt"])
            full = self.prompt_encoder.encode(row["prompt"] + row["completion"], add_generation_prompt=False)
            start = len(prompt.ids)
            if full.ids[:start] != prompt.ids:
                raise ValueError(
                    f"row {example.get('id', '?')!r}: the prompt renders differently once a completion follows"
                )
            input_ids.append(torch.tensor(full.ids))
            labels.append(torch.tensor([-100] * start + full.ids[start:]))
            weights.append(torch.full((len(full.ids),), float(example.get(WEIGHT_COLUMN, 1.0))))
            media.append(full.media)
        batch = {
            "input_ids": pad(input_ids, self.pad_token_id, "right"),
            "attention_mask": pad([torch.ones_like(ids) for ids in input_ids], 0, "right"),
            "labels": pad(labels, -100, "right"),
            "token_weights": pad(weights, 0.0, "right"),
        }
        return batch | collate_media(media) | self.prompt_encoder.token_fields(batch["input_ids"])


class MultimodalSFTTrainer(MSEAdapterCheckpoints, WeightedSFTTrainer):
    """`WeightedSFTTrainer` whose rows carry media: `MultimodalSFTTrainer(..., prompt_encoder=...)`.

    The rows stay raw (TRL does not tokenize them) and keep their media columns; the collator does the rest.
    """

    def __init__(self, model, args, *, prompt_encoder: PromptEncoder, processing_class, **kwargs):
        check_adapter_training(model, args, kwargs.get("peft_config"))
        args.dataset_kwargs = {**(args.dataset_kwargs or {}), "skip_prepare_dataset": True}
        args.remove_unused_columns = False
        tokenizer = getattr(processing_class, "tokenizer", processing_class)
        kwargs.setdefault("data_collator", MultimodalSFTCollator(prompt_encoder, tokenizer.pad_token_id))
        super().__init__(model, args, processing_class=processing_class, **kwargs)
